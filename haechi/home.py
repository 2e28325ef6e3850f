"""Where Haechi keeps its data: one folder, chosen by HAECHI_HOME.

Every stage asks this module for its paths so that nothing is written anywhere else, and a test
or a second installation can point HAECHI_HOME at a folder of its own.

The folder holds victims' cases, hashes, matched files and the institution's keys, so it is
Haechi's user's alone: made mode 700, and tightened to 700 when found open to others (unless
it is no folder of Haechi's to change: someone else's, a shared one such as /tmp, or a home
folder; then a warning says so). The first time a process opens it, the process's umask
becomes 077, so every file written afterwards (SQLite and its WAL, index files, keys, logs,
object store files, exports), by whichever module writes it, is mode 600 without each open()
having to say so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from sqlalchemy import DateTime, Engine, TypeDecorator, create_engine, event

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)

# Folders Haechi makes: its user may list, enter and write them; nobody else may even enter.
PRIVATE_FOLDER_MODE = 0o700
# Files Haechi creates where it says the mode itself (a new SQLite database).
PRIVATE_FILE_MODE = 0o600
# The permission bits of group and others: none of them may be set on what Haechi keeps, and
# the umask that clears them on everything a process creates once it has opened the data folder.
GROUP_OTHER_BITS = 0o077


def private_folder(path: Path) -> Path:
    """Make `path` and each missing parent with PRIVATE_FOLDER_MODE (mkdir -p would give the
    parents the umask's mode); a folder that exists is left as it is."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            folder.mkdir(mode=PRIVATE_FOLDER_MODE)
    return path


def _not_haechis(folder: Path, info: os.stat_result) -> str | None:
    """Why an existing data folder open to others must not be tightened, or None."""
    if info.st_uid != os.geteuid():
        return "it belongs to another user"
    if info.st_mode & stat.S_ISVTX:
        return "it is a shared folder (sticky bit, like /tmp)"
    with contextlib.suppress(RuntimeError, KeyError):  # no home folder known: nothing to spare
        home = Path.home().resolve()
        if folder.resolve() in (home, *home.parents):
            return "it is a home folder or holds one"
    return None


@functools.cache
def _opened(home: Path) -> None:
    """Once per process and folder: the umask set, the folder tightened."""
    umask = os.umask(GROUP_OTHER_BITS)
    if umask & ~GROUP_OTHER_BITS:  # it was stricter still: keep that
        os.umask(umask | GROUP_OTHER_BITS)
    info = home.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not mode & GROUP_OTHER_BITS:
        return
    reason = _not_haechis(home, info)
    if reason is None:
        home.chmod(mode & ~GROUP_OTHER_BITS)
        log.info("data folder %s was open to other users (mode %o): now %o", home, mode,
                 mode & ~GROUP_OTHER_BITS)
    else:
        log.warning("data folder %s is open to other users (mode %o) and is left so, since "
                    "%s: point HAECHI_HOME at a folder of Haechi's own", home, mode, reason)


def data_home() -> Path:
    """The data folder: HAECHI_HOME if set, else the per-user data folder of the platform;
    made (or tightened to) PRIVATE_FOLDER_MODE, see the module docstring."""
    configured = os.environ.get("HAECHI_HOME")
    if configured:
        home = Path(configured).expanduser()
    else:
        home = Path(platformdirs.user_data_dir("haechi"))
    private_folder(home)
    _opened(home)
    return home


class KeySettingError(ValueError):
    """A key setting, or a key file kept in the data folder, that cannot be used; the message
    says how to fix it."""


def data_folder_key(name: str, make: Callable[[], bytes]) -> bytes:
    """The key kept in the data folder's file `name` (mode 600), made by `make()` on first use.

    The file is written whole to a private temporary file and then linked into place, so a
    process starting at the same moment reads either no file or the whole key, and when two
    make one at once the first link wins and both use it. For every setting whose default is
    a key of this installation: the audit key, the signing key (and its public half), the
    review app's session secret, the pseudonym key.
    """
    path = data_home() / name
    if not path.exists():
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(make())
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first:
                os.link(temporary, path)  # theirs is the key
        finally:
            os.unlink(temporary)
    kept = path.read_bytes()
    if not kept.strip():
        raise KeySettingError(f"{path} is empty: remove it and a new key is made (what the "
                              "old one made will no longer verify)")
    return kept


def database_url() -> str:
    """DATABASE_URL if set (PostgreSQL in cluster mode), else SQLite inside the data folder."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{data_home() / 'haechi.sqlite3'}"


def _private_sqlite_file(engine: Engine) -> None:
    """Create a SQLite database file mode 600 before SQLite does (it would use the umask's
    mode); its WAL and shared-memory files take the database file's mode. A missing folder is
    not made: a database URL naming one is a configuration error, which SQLite reports."""
    database = engine.url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        with contextlib.suppress(FileExistsError, FileNotFoundError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))


@functools.cache
def _engine_for(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        _private_sqlite_file(engine)

        # Crawling, matching and case intake write from several threads of one process: WAL
        # lets readers go on while one writes, and the busy timeout queues writers instead of
        # failing them.
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def open_engine(url: str | None = None) -> Engine:
    """The one SQLAlchemy engine of this process for `url` (default: `database_url()`)."""
    return _engine_for(url or database_url())


def redis_url() -> str | None:
    """REDIS_URL when Haechi runs as a cluster; None on the embedded default."""
    return os.environ.get("REDIS_URL") or None


# A Redis restart or failover (ElastiCache promotes a replica in well under a minute) must not
# stop a crawler node, a worker or a consumer: every command is retried on a lost connection
# with backoff up to REDIS_RETRY_SECONDS in all.
REDIS_RETRIES = 12
REDIS_RETRY_CAP_SECONDS = 8.0
# A retried command may have run before its reply was lost; Haechi's Lua scripts remember a
# call token this long (longer than the ~80 s a client keeps retrying) to answer the repeat.
REDIS_CALL_TOKEN_SECONDS = 120


def redis_params() -> dict[str, Any]:
    """Keyword arguments of every Redis client Haechi makes (scrapy-redis's REDIS_PARAMS too)."""
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError, TimeoutError
    from redis.retry import Retry

    return {"retry": Retry(ExponentialBackoff(cap=REDIS_RETRY_CAP_SECONDS, base=0.25),
                           REDIS_RETRIES),
            "retry_on_error": [ConnectionError, TimeoutError],
            "health_check_interval": 30}


def redis_script(client: Redis, source: str) -> Any:
    """Register a Lua script whose source names TOKEN_SECONDS (how long it remembers a call
    token); see REDIS_CALL_TOKEN_SECONDS."""
    return client.register_script(source.replace("TOKEN_SECONDS", str(REDIS_CALL_TOKEN_SECONDS)))


def redis_client(url: str | None = None) -> Redis:
    """A client of the cluster's Redis (REDIS_URL unless `url`), riding out restarts."""
    from redis import Redis

    url = url or redis_url()
    if not url:
        raise ValueError("REDIS_URL is not set: cluster mode needs a Redis server")
    return Redis.from_url(url, **redis_params())


class UtcDateTime(TypeDecorator):
    """A timestamp column that always reads back as an aware UTC datetime.

    Every time Haechi stores is UTC, but SQLite keeps no zone and hands datetimes back naive,
    and PostgreSQL hands them back in the session's zone; reading them through this type means
    no caller has to repair them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
