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
