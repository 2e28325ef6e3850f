"""The test command's own Redis, PostgreSQL and IRC server: started on free ports in a folder of
their own, so the tests never touch (or depend on) a server that already runs on this machine.

`python scripts/test_services.py start FOLDER` starts them and prints the shell lines that
point the tests at them (HAECHI_TEST_REDIS, HAECHI_TEST_POSTGRES, HAECHI_TEST_IRC);
`stop FOLDER` stops them. Redis and PostgreSQL come from haechi.local_cluster, the same code
`haechi cluster up` uses; the IRC server is Debian's ngIRCd (for `haechi chats watch`), with a
configuration of its own, never the system's service.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # testkit/ is not installed: it is read from the checkout

from haechi.local_cluster import (  # noqa: E402
    ClusterError,
    start_postgres,
    start_redis,
    stop_postgres,
    stop_redis,
)
from testkit.testweb.server import free_port  # noqa: E402

# ngIRCd for the tests: loopback only, no DNS, ident or PAM look-ups (each would slow every
# connection), no limit on connections from one address (the tests' clients all come from
# 127.0.0.1) and no flood penalties (a test plays a conversation faster than people type).
NGIRCD_CONF = """[Global]
Name = irc.haechi.test
Info = Haechi test server
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = "Haechi test server"
AdminInfo1 = Haechi tests
AdminInfo2 = this machine
AdminEMail = tests@haechi.invalid
[Limits]
MaxConnectionsIP = 0
MaxJoins = 0
MaxPenaltyTime = 0
[Options]
DNS = no
Ident = no
PAM = no
"""
IRC_START_TIMEOUT = 15.0


def start_ngircd(port: int, folder: Path) -> None:
    """An ngIRCd of our own on 127.0.0.1:`port`, in the foreground of a process group of its
    own (its pid in `folder`/ngircd.pid, its log beside it), until stop_ngircd."""
    binary = shutil.which("ngircd") or ("/usr/sbin/ngircd" if Path("/usr/sbin/ngircd").exists()
                                        else None)
    if binary is None:
        raise ClusterError("the IRC tests need ngIRCd (Debian: apt-get install ngircd)")
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "ngircd.conf"
    conf.write_text(NGIRCD_CONF.format(port=port))
    with (folder / "ngircd.log").open("wb") as log:
        process = subprocess.Popen([binary, "-n", "-f", str(conf)], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    (folder / "ngircd.pid").write_text(str(process.pid))
    deadline = time.monotonic() + IRC_START_TIMEOUT
    while True:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        if process.poll() is not None or time.monotonic() > deadline:
            stop_ngircd(folder)
            raise ClusterError(f"ngIRCd did not start on port {port} (see {folder}/ngircd.log)")
        time.sleep(0.1)


def stop_ngircd(folder: Path) -> None:
    pidfile = folder / "ngircd.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            os.kill(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink()


def start(folder: Path) -> dict[str, str]:
    redis_port, postgres_port, irc_port = free_port(), free_port(), free_port()
    start_redis(redis_port, folder / "redis", persist=False)
    start_postgres(postgres_port, folder / "postgres")
    start_ngircd(irc_port, folder / "ngircd")
    (folder / "ports.json").write_text(json.dumps({"redis": redis_port,
                                                   "postgres": postgres_port,
                                                   "irc": irc_port}))
    return {"HAECHI_TEST_REDIS": f"redis://127.0.0.1:{redis_port}/11",
            "HAECHI_TEST_POSTGRES":
                f"postgresql+psycopg://postgres@127.0.0.1:{postgres_port}/postgres",
            "HAECHI_TEST_IRC": f"127.0.0.1:{irc_port}"}


def stop(folder: Path) -> None:
    if (folder / "redis").exists():
        stop_redis(folder / "redis")
    if (folder / "postgres" / "PG_VERSION").exists():
        stop_postgres(folder / "postgres")
    stop_ngircd(folder / "ngircd")
    release_output()


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def release_output() -> None:
    """Stop whatever the test run left behind still writing to the run's output pipe.

    Whoever reads the test command's output (CI) waits until every writer of that pipe has
    closed it, so a process a test started and never stopped would hold CI until its time
    runs out although every test passed. A process is taken for the run's own only when it
    holds the write end of that pipe and carries this run's HAECHI_TEST_REDIS (a free port
    chosen for the run) in its environment; each is named (a test to fix) and killed."""
    marker = os.environ.get("HAECHI_TEST_REDIS", "")
    try:
        pipes = {os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2)}
    except OSError:
        return
    pipes = {name for name in pipes if name.startswith("pipe:")}
    if not pipes or not marker:
        return
    mine, tag = _ancestors(), f"HAECHI_TEST_REDIS={marker}".encode()
    for task in Path("/proc").glob("[0-9]*"):
        pid = int(task.name)
        if pid in mine:
            continue
        try:
            if tag not in (task / "environ").read_bytes().split(b"\0"):
                continue
            held = any(os.readlink(fd) in pipes and _writes(task, fd.name)
                       for fd in (task / "fd").iterdir())
            command = (task / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")[:200]
        except OSError:
            continue
        if held:
            print(f"scripts/test: process {pid} ({command}) was left running by the tests "
                  "and still holds their output; stopping it", file=sys.stderr, flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _writes(task: Path, fd: str) -> bool:
    """Whether the descriptor is open for writing (fdinfo's octal flags: O_WRONLY or O_RDWR)."""
    for line in (task / "fdinfo" / fd).read_text().splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8) & 3 != 0
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    try:
        if args.action == "start":
            for name, value in start(args.folder).items():
                print(f"export {name}={shlex.quote(value)}")
        else:
            stop(args.folder)
    except ClusterError as exc:
        print(f"scripts/test: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
