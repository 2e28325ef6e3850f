"""The one settings object: every variable documented once, typed, and a bad value named."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engines.settings import VARIABLES, ConfigurationError, Settings, current

ROOT = Path(__file__).resolve().parents[1]
HAECHI = str(Path(sys.executable).with_name("haechi"))


def readme_variables() -> set[str]:
    """The variables the README's settings table names (first column)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| variable | what it does"):]
    table = table[:table.index("\n\n")]
    names: set[str] = set()
    for row in table.splitlines()[2:]:
        names.update(re.findall(r"`([A-Z][A-Z0-9_<>]+)`", row.split("|")[1]))
    return names


def test_every_setting_is_in_the_readme_table_and_the_table_names_no_other() -> None:
    documented = readme_variables()
    assert set(VARIABLES) <= documented, set(VARIABLES) - documented
    # The rest of the table is the crawl's tuning, which Scrapy's settings carry to the
    # crawler's components and the matcher's item pipeline (crawler/run.py), and boto3's own
    # AWS_ENDPOINT_URL.
    others = documented - set(VARIABLES)
    crawler = "".join(path.read_text() for stage in ("crawler", "matcher")
                      for path in (ROOT / stage).rglob("*.py"))
    for name in others - {"AWS_ENDPOINT_URL", "HAECHI_SCRAPY_<SETTING>"}:
        scrapy_name = name.removeprefix("HAECHI_SCRAPY_")
        assert "settings.get" in crawler and (f'"{name}"' in crawler
                                               or f'"{scrapy_name}"' in crawler), name


def test_defaults_types_and_the_cluster_switch() -> None:
    empty = Settings.from_environ({})
    assert empty.notice_deadline_hours == 48.0 and empty.four_eyes is False
    assert empty.smtp_url == "smtp://127.0.0.1:25" and not empty.cluster
    given = Settings.from_environ({"HAECHI_FOUR_EYES": "1", "HAECHI_ALERT_EMAIL": " a@x, b@y ,",
                                   "REDIS_URL": "redis://h:1/0", "HAECHI_ORG_NAME": "  "})
    assert given.four_eyes is True and given.alert_email == ("a@x", "b@y")
    assert given.cluster and given.org_name == ""


@pytest.mark.parametrize(("variable", "value"), [
    ("HAECHI_FOUR_EYES", "maybe"), ("HAECHI_ESCALATE_DAYS", "-1"),
    ("HAECHI_TASK_VISIBILITY_TIMEOUT", "soon"), ("HAECHI_NOTICE_DEADLINE_HOURS", "nan"),
])
def test_a_bad_value_is_a_sentence_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_environ({variable: value})


def test_current_follows_a_changed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAECHI_ORG_NAME", "First Desk")
    first = current()
    assert first.org_name == "First Desk" and current() is first  # read once while unchanged
    monkeypatch.setenv("HAECHI_ORG_NAME", "Second Desk")
    assert current().org_name == "Second Desk"


def test_the_cli_turns_a_bad_setting_into_exit_3(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HAECHI_HOME": str(tmp_path),
           "HAECHI_NOTICE_DEADLINE_HOURS": "two days"}
    result = subprocess.run([HAECHI, "cases", "list"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 3, result.stderr
    assert "HAECHI_NOTICE_DEADLINE_HOURS" in result.stderr and "Traceback" not in result.stderr
