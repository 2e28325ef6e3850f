"""Data flows one way: the imports of the source tree, read with ast, never run back.

The house has floors: engines/ (the ground floor: data folder, database, broker, object stores,
media, fetch, mail, inputs, settings) under the stages crawler → matcher → takedown, with
grooming beside them, and the command line (haechi/) on top. A module may import from a floor
below it or from a stage to its left, never from its right or from above; the test fixtures
(testkit/) are for tests, benchmarks and the demo only, never for shipped code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What each top-level package may import of the others (itself always).
ALLOWED: dict[str, set[str]] = {
    "engines": set(),
    "crawler": {"engines"},
    "matcher": {"engines", "crawler"},
    "takedown": {"engines", "crawler", "matcher"},
    "grooming": {"engines"},
    "haechi": {"engines", "crawler", "matcher", "takedown", "grooming", "testkit"},
    "testkit": {"engines", "crawler", "matcher", "takedown", "grooming"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """The top-level packages of this tree that `path` imports, with the line of each."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update((name.split(".")[0], node.lineno) for name in names
                     if name.split(".")[0] in ALLOWED)
    return found


def back_arrows() -> list[str]:
    arrows = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for imported, line in sorted(imported_packages(path)):
                if imported != package and imported not in allowed:
                    arrows.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    return arrows


def test_no_import_runs_back_against_the_flow() -> None:
    assert back_arrows() == []


def test_the_check_sees_an_arrow_that_runs_back(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom takedown.cases import CaseStore\n"
                      "def f():\n    import matcher.bank\n")
    assert imported_packages(module) == {("takedown", 2), ("matcher", 4)}


def test_every_package_of_the_wheel_is_placed_on_a_floor_and_the_fixtures_stay_out() -> None:
    import configparser

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    shipped = {name.strip().rstrip("*")
               for name in setup["options.packages.find"]["include"].split() if name.strip()}
    assert shipped == set(ALLOWED) - {"testkit"}


def test_the_readme_layout_table_names_every_folder_and_its_floor() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| folder | what lives there | may import |"):]
    rows = [row.split("|") for row in table[:table.index("\n\n")].splitlines()[2:]]
    folders = {row[1].strip().strip("`").rstrip("/"): row[3] for row in rows}
    made = ("build", "dist")  # what a local `pip install .` leaves (ignored by git)
    tracked = {path.name for path in ROOT.iterdir() if path.is_dir() and path.name not in made
               and not path.name.startswith((".", "__")) and not path.name.endswith(".egg-info")}
    assert set(folders) == tracked
    for package, allowed in ALLOWED.items():
        said = set(re.findall(r"`(\w+)/`", folders[package]))
        if "everything" in folders[package] or "the stages" in folders[package]:
            continue
        assert said == allowed, (package, said, allowed)
