"""Haechi's settings: one typed object, read from the environment in one place.

Every setting is an environment variable (the README's settings table documents each one, and
tests/test_settings.py holds the two to each other). Stages ask `current()` for the object and
read its attributes instead of reading `os.environ` themselves, so a setting's name, type,
default and parse error are written once, and a bad value is a sentence naming the variable
(exit 3), never a traceback deep in a stage.

`current()` reads the environment again only when one of the variables changed since the last
call: a process that never changes its environment reads it once, while a test that sets a
variable sees it at once.

The crawler's own tuning (HAECHI_SITE_INTERVAL, HAECHI_LEASE_SECONDS, HAECHI_SCRAPY_<SETTING>,
...) is not here: crawler/run.py hands every HAECHI_ variable to Scrapy's settings, which are
the crawler's typed settings object, passed to every component by Scrapy.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigurationError(Exception):
    """The installation or its environment is not set up for this command (exit 3).

    Ground floor: engines below the stages raise it without importing the command line, and
    haechi/cli.py turns it into a sentence and exit 3.
    """


def _text(value: str) -> str:
    return value.strip()


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("", "0", "false", "no", "off"):
        return False
    if lowered in ("1", "true", "yes", "on"):
        return True
    raise ValueError("set it to 1 or 0")


def _positive(kind: Callable[[str], float]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = kind(value)
        if not number > 0:
            raise ValueError("it must be a positive number")
        return number

    return parse


def _addresses(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def setting(variable: str, default: Any = None, parse: Callable[[str], Any] = _text) -> Any:
    """A field read from `variable`: unset or empty gives `default`."""
    return field(default=default, metadata={"variable": variable, "parse": parse})


@dataclass(frozen=True)
class Settings:
    """Every setting of Haechi's own code, typed; None where unset means "the default
    described in the README" (a key in the data folder, the media store, ...)."""

    home: str | None = setting("HAECHI_HOME")
    database_url: str | None = setting("DATABASE_URL")
    redis_url: str | None = setting("REDIS_URL")
    store: str | None = setting("HAECHI_STORE")
    org_name: str = setting("HAECHI_ORG_NAME", "")
    notice_from: str = setting("HAECHI_FROM", "")
    notice_deadline_hours: float = setting("HAECHI_NOTICE_DEADLINE_HOURS", 48.0,
                                           _positive(float))
    site_registry: str | None = setting("HAECHI_SITE_REGISTRY")
    # The operator's web-form profiles (takedown/forms.py): a JSON file; unset means
    # form_profiles.json in the data folder.
    form_profiles: str | None = setting("HAECHI_FORM_PROFILES")
    smtp_url: str = setting("HAECHI_SMTP_URL", "smtp://127.0.0.1:25")
    escalate_days: float = setting("HAECHI_ESCALATE_DAYS", 7.0, _positive(float))
    # The institution's escalation ladder (takedown/ladder.py): a JSON file.
    ladder: str | None = setting("HAECHI_LADDER")
    rdap_max_age_hours: float = setting("HAECHI_RDAP_MAX_AGE_HOURS", 168.0, _positive(float))
    evidence_key: str | None = setting("HAECHI_EVIDENCE_KEY")
    evidence_store: str | None = setting("HAECHI_EVIDENCE_STORE")
    audit_key: str | None = setting("HAECHI_AUDIT_KEY")
    bank_key: str | None = setting("HAECHI_BANK_KEY")
    signing_key: str | None = setting("HAECHI_SIGNING_KEY")
    secret_key: str | None = setting("HAECHI_SECRET_KEY")
    review_https: bool = setting("HAECHI_REVIEW_HTTPS", False, _flag)
    review_trust_proxy: bool = setting("HAECHI_REVIEW_TRUST_PROXY", False, _flag)
    four_eyes: bool = setting("HAECHI_FOUR_EYES", False, _flag)
    pseudonym_key: str | None = setting("HAECHI_PSEUDONYM_KEY")
    alert_webhook: str | None = setting("HAECHI_ALERT_WEBHOOK")
    alert_email: tuple[str, ...] = setting("HAECHI_ALERT_EMAIL", (), _addresses)
    alert_from: str = setting("HAECHI_ALERT_FROM", "haechi-alerts@localhost")
    excerpt_retention_days: float = setting("HAECHI_EXCERPT_RETENTION_DAYS", 90.0,
                                            _positive(float))
    fetch_allow: str | None = setting("HAECHI_FETCH_ALLOW")
    task_visibility_timeout: int = setting("HAECHI_TASK_VISIBILITY_TIMEOUT", 300,
                                           _positive(int))
    cluster_redis_port: int = setting("HAECHI_CLUSTER_REDIS_PORT", 6379, _positive(int))
    cluster_postgres_port: int = setting("HAECHI_CLUSTER_POSTGRES_PORT", 5432, _positive(int))
    cluster_name: str = setting("HAECHI_CLUSTER_NAME", "haechi")
    log_level: str = setting("HAECHI_LOG_LEVEL", "ERROR")
    # The site schedule, shared by crawler nodes and matcher workers (which are no Scrapy
    # process, so these cannot travel in Scrapy's settings).
    recrawl_hours: float = setting("HAECHI_RECRAWL_HOURS", 24.0, _positive(float))
    recrawl_matched_hours: float = setting("HAECHI_RECRAWL_MATCHED_HOURS", 6.0, _positive(float))
    recrawl_matched_days: float = setting("HAECHI_RECRAWL_MATCHED_DAYS", 30.0, _positive(float))
    schedule_claim_seconds: float = setting("HAECHI_SCHEDULE_CLAIM_SECONDS", 300.0,
                                            _positive(float))

    @property
    def cluster(self) -> bool:
        """Whether Haechi runs as a cluster: REDIS_URL set. The one place that decides it."""
        return self.redis_url is not None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        values = {}
        for spec in dataclasses.fields(cls):
            variable, parse = spec.metadata["variable"], spec.metadata["parse"]
            raw = environ.get(variable, "")
            if not raw.strip():
                continue
            try:
                values[spec.name] = parse(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{variable} is {raw!r}: {exc}") from None
        return cls(**values)


VARIABLES: tuple[str, ...] = tuple(spec.metadata["variable"]
                                   for spec in dataclasses.fields(Settings))

_lock = threading.Lock()
_last: tuple[tuple[str | None, ...], Settings] | None = None


def current() -> Settings:
    """The settings of this process's environment as it is now (see the module docstring)."""
    global _last
    snapshot = tuple(os.environ.get(variable) for variable in VARIABLES)
    with _lock:
        if _last is None or _last[0] != snapshot:
            _last = (snapshot, Settings.from_environ(os.environ))
        return _last[1]
