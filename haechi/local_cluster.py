"""The whole cluster on one machine, for trying it: `haechi cluster up` / `down`.

It uses the Redis and PostgreSQL servers it finds (REDIS_URL and DATABASE_URL, else the usual
local ports) and starts its own when none answers: redis-server with an append-only file (so a
restart loses nothing) and a PostgreSQL cluster made with initdb, both inside the data folder.
Then it starts matcher workers, crawler nodes, the takedown consumer and the review app as
background processes, each with a log file, and writes what it started to `cluster/state.json`
so that `down` stops exactly that.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engines.home import data_home
from engines.settings import current

DATABASE = "haechi"
START_TIMEOUT = 30.0


class ClusterError(RuntimeError):
    """The local cluster cannot be started or stopped; the message says why."""


@dataclass
class ClusterState:
    redis_url: str
    database_url: str
    review_url: str
    processes: dict[str, int] = field(default_factory=dict)  # name -> pid (group leader)
    servers: dict[str, str] = field(default_factory=dict)  # what we started -> its folder


def cluster_dir() -> Path:
    folder = data_home() / "cluster"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _state_path() -> Path:
    return cluster_dir() / "state.json"


def read_state() -> ClusterState | None:
    path = _state_path()
    if not path.exists():
        return None
    return ClusterState(**json.loads(path.read_text()))


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait_for(port: int, what: str, folder: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(port):
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} did not start on port {port} within {START_TIMEOUT:.0f} s"
                               f" (see its log in {folder})")
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the servers -------------------------------------------------------------------------

def ensure_redis(state: ClusterState | None = None) -> tuple[str, str | None]:
    """REDIS_URL if set, else a server on HAECHI_CLUSTER_REDIS_PORT, else one started here.
    Returns the URL and, when started here, its folder."""
    settings = current()
    if settings.redis_url:
        return settings.redis_url, None
    port = settings.cluster_redis_port
    if _answers(port):
        return f"redis://127.0.0.1:{port}/0", None
    folder = cluster_dir() / "redis"
    start_redis(port, folder)
    return f"redis://127.0.0.1:{port}/0", str(folder)


def start_redis(port: int, folder: Path, persist: bool = True) -> None:
    """A redis-server of our own on `port`, its files in `folder`; `persist` keeps an
    append-only file so that a restart loses nothing (the local cluster), the test servers
    keep nothing."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ClusterError("no Redis answers on port "
                           f"{port} and redis-server is not installed "
                           "(Debian: apt-get install redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    durability = (["--appendonly", "yes", "--appendfsync", "everysec"] if persist
                  else ["--appendonly", "no", "--save", ""])
    subprocess.run([binary, "--daemonize", "yes", "--bind", "127.0.0.1", "--port",
                    str(port), "--dir", str(folder), *durability,
                    "--pidfile", str(folder / "redis.pid"),
                    "--logfile", str(folder / "redis.log")], check=True)
    _wait_for(port, "redis-server", folder)


def stop_redis(folder: Path) -> None:
    """Stop the redis-server that start_redis started in `folder`."""
    pidfile = folder / "redis.pid"
    if pidfile.exists():
        _stop_group(int(pidfile.read_text().strip()))


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or \
        ([shutil.which(name)] if shutil.which(name) else [])
    if not found:
        raise ClusterError(f"a PostgreSQL server of our own is needed and {name} is not "
                           "installed (Debian: apt-get install postgresql)")
    return found[-1]


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package made a postgres user for it.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _create_database(port: int) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                         autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (DATABASE,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


def ensure_postgres() -> tuple[str, str | None]:
    """DATABASE_URL if set, else a server on HAECHI_CLUSTER_POSTGRES_PORT, else one made and
    started here."""
    settings = current()
    if settings.database_url:
        return settings.database_url, None
    port = settings.cluster_postgres_port
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}"
    if _answers(port):
        _create_database(port)
        return url, None
    folder = postgres_dir()
    start_postgres(port, folder)
    _create_database(port)
    return url, str(folder)


def postgres_dir() -> Path:
    """Where the local cluster's own PostgreSQL keeps its files. Under root the server runs as
    the postgres user, who cannot enter the data folder (it is its user's alone, mode 700), so
    the cluster lives in that user's home, one per data folder; otherwise in the data folder."""
    if os.geteuid() != 0:
        return cluster_dir() / "postgres"
    import hashlib
    import pwd

    digest = hashlib.sha256(str(data_home().resolve()).encode()).hexdigest()[:16]
    return Path(pwd.getpwnam("postgres").pw_dir) / f"haechi-{digest}"


def start_postgres(port: int, folder: Path) -> None:
    """A PostgreSQL server of our own on `port` (trust login for local connections), its
    cluster made by initdb in `folder` on first use. Under root it runs as the postgres
    user, who must be able to reach `folder`."""
    if not (folder / "PG_VERSION").exists():
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        result = subprocess.run(_as_postgres_user([_postgres_bin("initdb"), "-D", str(folder),
                                                   "-U", "postgres", "--auth=trust"]),
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterError(f"initdb failed in {folder} (the postgres user must be able to "
                               f"reach that folder): {result.stderr.strip()[-400:]}")
    result = subprocess.run(_as_postgres_user([
        _postgres_bin("pg_ctl"), "-D", str(folder), "-l", str(folder / "server.log"), "-w",
        "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"]),
        capture_output=True, text=True)
    if result.returncode != 0:
        raise ClusterError(f"PostgreSQL did not start: {result.stderr.strip()[-400:]}")
    _wait_for(port, "PostgreSQL", folder)


def stop_postgres(folder: Path) -> None:
    """Stop the PostgreSQL server that start_postgres started in `folder`."""
    subprocess.run(_as_postgres_user([_postgres_bin("pg_ctl"), "-D", str(folder), "-m", "fast",
                                      "-w", "stop"]), capture_output=True)


# --- the services ------------------------------------------------------------------------

def _haechi() -> str:
    return str(Path(sys.executable).with_name("haechi"))


def _start(name: str, args: list[str], env: dict[str, str]) -> int:
    log = (cluster_dir() / f"{name}.log").open("ab")
    process = subprocess.Popen([_haechi(), *args], env=env, stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    return process.pid


def up(crawlers: int = 1, workers: int = 1, review_port: int = 8600) -> ClusterState:
    """Start the cluster (servers as needed, then the services); see the module docstring."""
    existing = read_state()
    if existing is not None and any(_alive(pid) for pid in existing.processes.values()):
        raise ClusterError("the local cluster is already up (haechi cluster down stops it)")
    redis_url, redis_folder = ensure_redis()
    database_url, postgres_folder = ensure_postgres()
    state = ClusterState(redis_url, database_url, f"http://127.0.0.1:{review_port}/")
    if redis_folder:
        state.servers["redis"] = redis_folder
    if postgres_folder:
        state.servers["postgres"] = postgres_folder
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url}
    try:
        for n in range(workers):
            state.processes[f"worker-{n}"] = _start(f"worker-{n}", ["worker", "--concurrency",
                                                                    "1"], env)
        for n in range(crawlers):
            state.processes[f"crawler-{n}"] = _start(f"crawler-{n}", ["crawler"], env)
        state.processes["consumer"] = _start("consumer", ["cases", "consume"], env)
        state.processes["review"] = _start("review", ["review", "serve", "--port",
                                                      str(review_port)], env)
    finally:
        _state_path().write_text(json.dumps(asdict(state), indent=2))
    return state


def _stop_group(pid: int, grace: float = 15.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def down() -> ClusterState | None:
    """Stop what `up` started, servers included (only those it started itself)."""
    state = read_state()
    if state is None:
        return None
    for pid in state.processes.values():
        _stop_group(pid)
    if "redis" in state.servers:
        stop_redis(Path(state.servers["redis"]))
    if "postgres" in state.servers:
        stop_postgres(Path(state.servers["postgres"]))
    _state_path().unlink()
    return state
