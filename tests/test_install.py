"""A plain `pip install .` is a working Haechi: every runtime import is in install_requires.

The test venv has the test tools too, and they bring packages of their own (itsdangerous came
only with them once, and `haechi review serve` failed after the demo), so this builds a venv
from the checkout alone, imports every module there and runs the commands a newcomer runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from testkit.testweb.server import free_port

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engines", "haechi", "matcher", "crawler", "takedown", "grooming")
# Alembic's migration environment runs only inside Alembic, which gives it its context.
NOT_IMPORTABLE_ALONE = {"engines.migrations.env"}

IMPORT_EVERY_MODULE = f"""
import importlib, pkgutil
failed = []
for name in {PACKAGES!r}:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if info.name in {NOT_IMPORTABLE_ALONE!r}:
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{{info.name}}: {{exc!r}}")
print("\\n".join(failed))
"""


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("plain-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--progress-bar", "off", str(ROOT)], check=True)
    return venv


def _run(venv: Path, *args: str, home: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(HAECHI_HOME=str(home), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    return subprocess.run(list(args), env=env, text=True, capture_output=True, timeout=300,
                          cwd=home.parent, **kwargs)


def test_every_module_imports_from_a_plain_install(plain_venv: Path, tmp_path: Path) -> None:
    result = _run(plain_venv, str(plain_venv / "bin" / "python"), "-c", IMPORT_EVERY_MODULE,
                  home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", "modules that need a package missing from " \
        f"install_requires:\n{result.stdout}"


def test_plain_install_runs_the_commands_a_newcomer_runs(plain_venv: Path,
                                                         tmp_path: Path) -> None:
    home = tmp_path / "home"
    haechi = str(plain_venv / "bin" / "haechi")
    assert "demo" in _run(plain_venv, haechi, "--help", home=home).stdout
    stats = _run(plain_venv, haechi, "bank", "stats", "--json", home=home)
    assert stats.returncode == 0, stats.stderr
    added = _run(plain_venv, haechi, "users", "add", "reviewer", home=home,
                 input="a long enough password\n")
    assert added.returncode == 0, added.stderr

    port = free_port()
    env = {**os.environ, "HAECHI_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    server = subprocess.Popen([haechi, "review", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        page = None
        while page is None and time.monotonic() < deadline:
            assert server.poll() is None, server.communicate()[1]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
                    page = r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None, "the review app did not answer within 60 s"
        assert "password" in page.lower()
    finally:
        server.terminate()
        server.wait(10)
