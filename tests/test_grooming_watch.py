"""`haechi chats watch` on a real IRC server (the test run's own ngIRCd, HAECHI_TEST_IRC, started
by scripts/test): a grooming approach played by plain IRC clients in one room alerts once, in
time, naming the right pair; a parent and child in another room do not; a room that refuses
the watcher is an error while the others go on. And the IRC reader on hostile bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from grooming.pseudonyms import Pseudonymiser
from grooming.rooms import RoomError, RoomUrl, parse_room_url
from grooming.rooms.irc import MAX_LINE, IrcRoom, LineFramer, parse_line, plain_text
from grooming.watch import LiveRoom
from tests.test_grooming import OUTSIDE_BENIGN

ROOT = Path(__file__).resolve().parents[1]
IRC = os.environ.get("HAECHI_TEST_IRC")
KEY = "watch-test-key"
# The approach of tests/test_grooming_pairs.py (known to alert, with "b" as the target), here
# with a bystander in the room and the first line addressed to the child by name.
GROOMING = [("bystander", "anyone up for the raid tonight"),
            ("groomer", "{kid}: how old are you?"), ("kid", "14"),
            ("groomer", "are you home alone?"), ("groomer", "send me a picture of you"),
            ("bystander", "lol i need a healer"), ("groomer", "don't tell your mom")]
# The loaded machine's margin; the contract is 2 s.
ALERT_WITHIN = 15.0
PAUSE = 0.25  # between lines: people do not type faster than this


class Client:
    """A plain IRC client, as a person's: connect, register, join, say lines."""

    def __init__(self, nick: str) -> None:
        self.nick = nick

    async def connect(self, host: str, port: int, *channels: str) -> Client:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        self.send(f"NICK {self.nick}", f"USER {self.nick} 0 * :test")
        await self.expect(" 001 ")
        for channel in channels:
            self.send(f"JOIN {channel}")
            await self.expect(f" 366 {self.nick} {channel} ")
        return self

    def send(self, *lines: str) -> None:
        self.writer.write("".join(f"{line}\r\n" for line in lines).encode())

    async def say(self, channel: str, text: str) -> float:
        self.send(f"PRIVMSG {channel} :{text}")
        await self.writer.drain()
        return time.monotonic()

    async def expect(self, marker: str, timeout: float = 10) -> str:
        async def read() -> str:
            while True:
                line = (await self.reader.readline()).decode(errors="replace")
                if not line:
                    raise EOFError("the server closed the connection")
                if line.startswith("PING"):
                    self.send("PONG" + line[4:].rstrip())
                if marker in line:
                    return line
        return await asyncio.wait_for(read(), timeout)

    async def close(self) -> None:
        self.send("QUIT :done")
        await self.writer.drain()
        self.writer.close()


@pytest.fixture
def irc() -> tuple[str, int]:
    if not IRC:
        pytest.skip("HAECHI_TEST_IRC is not set: scripts/test starts an ngIRCd and sets it")
    host, _, port = IRC.rpartition(":")
    return host, int(port)


async def _lines(stream: asyncio.StreamReader, into: list[tuple[float, str]]) -> None:
    while line := await stream.readline():
        into.append((time.monotonic(), line.decode(errors="replace")))


def test_a_grooming_approach_in_a_live_room_alerts_once_in_time(irc, haechi_home) -> None:
    asyncio.run(_play(*irc))


async def _play(host: str, port: int) -> None:
    tag = f"{random.randrange(10**6):06d}"
    groom, family, closed = f"#groom{tag}", f"#family{tag}", f"#closed{tag}"
    nicks = {"groomer": f"gr{tag}", "kid": f"ki{tag}", "bystander": f"by{tag}",
             "A": f"mo{tag}", "B": f"ch{tag}", "keeper": f"ke{tag}"}
    keeper = await Client(nicks["keeper"]).connect(host, port, closed)
    keeper.send(f"MODE {closed} +i")  # invite only: the watcher will be refused
    await keeper.expect(" MODE ")
    env = {**os.environ, "HAECHI_PSEUDONYM_KEY": KEY}
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "haechi.cli", "chats", "watch", "--json", "--no-alerts",
        f"irc://{host}:{port}/{groom}", f"irc://{host}:{port}/%23family{tag}",
        f"irc://{host}:{port}/{closed}", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out: list[tuple[float, str]] = []
    err: list[tuple[float, str]] = []
    readers = [asyncio.create_task(_lines(watcher.stdout, out)),
               asyncio.create_task(_lines(watcher.stderr, err))]
    clients: dict[str, Client] = {}
    try:
        deadline = time.monotonic() + 60
        while sum("joined" in line for _, line in err) < 2 or not any(
                "cannot join" in line for _, line in err):
            assert time.monotonic() < deadline, "".join(line for _, line in err)
            assert watcher.returncode is None, "".join(line for _, line in err)
            await asyncio.sleep(0.1)
        for role in ("groomer", "kid", "bystander"):
            clients[role] = await Client(nicks[role]).connect(host, port, groom)
        for role in ("A", "B"):
            clients[role] = await Client(nicks[role]).connect(host, port, family)
        sent: list[float] = []  # when each line of the grooming room was said, by index
        benign = OUTSIDE_BENIGN["mom-en"]
        for i in range(max(len(GROOMING), len(benign))):
            if i < len(GROOMING):
                role, text = GROOMING[i]
                sent.append(await clients[role].say(groom, text.format(kid=nicks["kid"])))
            if i < len(benign):
                await clients[benign[i][0]].say(family, benign[i][1])
            await asyncio.sleep(PAUSE)
        await asyncio.sleep(3)  # any later (wrong) alert has time to arrive
    finally:
        watcher.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(watcher.wait(), 20)
        await asyncio.gather(*readers)
        for client in (*clients.values(), keeper):
            await client.close()
    stderr = "".join(line for _, line in err)
    assert code == 1, stderr  # stopped cleanly, and says one room could not be watched
    assert "Traceback" not in stderr
    assert f"cannot join {closed}: the channel is invite only" in stderr
    alerts = [(at, json.loads(line)) for at, line in out]
    assert len(alerts) == 1, alerts
    at, alert = alerts[0]
    pseudonym = Pseudonymiser(KEY.encode())
    assert alert["speaker"] == pseudonym(nicks["groomer"])
    assert alert["target"] == pseudonym(nicks["kid"])
    assert alert["tier"] in ("review", "urgent")
    assert alert["conversation"] == pseudonym(f"irc://{host}/{groom}", "C")
    assert alert["room"] == f"irc://{host}:{port}/{groom}"
    deciding = alert["first_alert_message"]
    assert GROOMING[deciding][0] == "groomer"
    assert at - sent[deciding] < ALERT_WITHIN, at - sent[deciding]
    for field in ("schema", "source", "messages", "minor_evidence", "reported_speech",
                  "score", "stages", "timeline", "evidence", "slang", "speakers",
                  "scanned_at"):
        assert field in alert
    assert alert["minor_evidence"]["lines"] == [{"message": 2, "text": "14"}]
    assert nicks["groomer"] not in json.dumps(alert)  # pseudonyms only


def test_the_reader_survives_hostile_lines() -> None:
    framer = LineFramer()
    long = b":x!y@z PRIVMSG #r :" + b"a" * 600 + b"\r\n"
    lines = framer.feed(b"PING :one\r\n" + long[:300])
    assert lines == [b"PING :one\r\n"]
    assert framer.feed(long[300:] + b"PING :two\r\n") == [b"PING :two\r\n"]
    assert framer.rejected == 1 and len(framer.buffer) == 0
    framer.feed(b"x" * 5000)  # no line feed at all: never buffered beyond one line
    assert len(framer.buffer) == 0 and framer.rejected == 2
    assert framer.feed(b"rest\r\nPING :three\n") == [b"PING :three\n"]
    exact = b"PING :" + b"b" * (MAX_LINE - 8) + b"\r\n"
    assert len(exact) == MAX_LINE and LineFramer().feed(exact) == [exact]

    for hostile in (b"", b"\r\n", b":\r\n", b": PRIVMSG\r\n", b":nick\r\n", b"   \r\n",
                    b"PRIV\x00MSG #r :x\r\n", b"\xff\xfe\r\n", b"12 #r\r\n", b"!!! x\r\n",
                    b"@tags\r\n", b"P " + b"p " * 20 + b"\r\n", b"a" * 513):
        assert parse_line(hostile) is None, hostile
    line = parse_line(b":n\xffck!u@h PRIVMSG #room :caf\xc3\xa9 \xe9\x80 ok\r\n")
    assert line is not None and line.command == "PRIVMSG" and line.nick == "n\ufffdck"
    assert line.params == ("#room", "café \ufffd ok")
    assert parse_line(b"@time=x :a!b@c PRIVMSG #r :hi\r\n").params == ("#r", "hi")
    assert parse_line(b"ping :x\r\n").command == "PING"
    assert parse_line(b":srv 353 me = #r :@a +b c\n").params == ("me", "=", "#r", "@a +b c")
    assert plain_text("\x02\x0304,12are you\x0f home \x1dalone\x1d?") == "are you home alone?"
    assert plain_text("\x01ACTION waves\x01") == "waves"
    assert plain_text("\x01VERSION\x01") is None
    assert plain_text("\x1b[2J\x07") == "[2J"  # no terminal escapes get through


def test_room_urls() -> None:
    assert parse_room_url("irc://irc.example.org/#kids") == RoomUrl(
        "irc", "irc.example.org", 6667, "#kids", "irc://irc.example.org/#kids")
    tls = parse_room_url("ircs://Irc.Example.org:7000/%23Kids")
    assert (tls.port, tls.channel, tls.key) == (7000, "#Kids", "irc://irc.example.org/#kids")
    assert parse_room_url("irc://[::1]/chat").channel == "#chat"
    for bad in ("http://x/#a", "irc://x", "irc:///#a", "irc://x:99999/#a", "irc://x/#a b",
                "irc://x/#a,#b"):
        with pytest.raises(RoomError):
            parse_room_url(bad)


def test_a_dropped_connection_reconnects_and_a_refused_join_ends_the_room() -> None:
    """Against a server written to misbehave: garbage first, then a line the room said, then
    a dropped connection; on the second connection it bans us."""
    asyncio.run(_hostile_server())


async def _hostile_server() -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while b"USER" not in await reader.readline():
            pass
        writer.write(b":srv 001 haechi :welcome\r\n")
        await reader.readline()  # JOIN
        if connections == 1:
            writer.write(b":haechi!w@h JOIN #room\r\n:srv 353 haechi = #room :@kid bad\r\n"
                         b":" + b"x" * 700 + b"\r\n\x00\x00\r\n:bad!u@h PRIVMSG\r\n"
                         b"\xff\xff\xff\r\n:bad!u@h PRIVMSG #room :\x01PING 1\x01\r\n"
                         b":bad!u@h PRIVMSG #room :kid: are you \xffalone?\r\n")
            await writer.drain()
        else:
            writer.write(b":srv 474 haechi #room :Cannot join channel (+b)\r\n")
            await writer.drain()
            await asyncio.sleep(1)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    status: list[str] = []
    room = IrcRoom(parse_room_url(f"irc://127.0.0.1:{port}/#room"), "haechi", status.append)
    got = []
    with pytest.raises(RoomError, match="banned from the channel"):
        async with asyncio.timeout(15):
            async for batch in room.batches():
                got += batch
    server.close()
    assert [(s.nick, s.text, s.mention) for s in got] == [("bad", "kid: are you \ufffdalone?",
                                                           "kid")]
    assert connections == 2 and any("reconnecting in" in s for s in status)


def test_each_new_message_is_tagged_once_and_the_window_is_bounded(monkeypatch) -> None:
    room = LiveRoom("C-test", classifier=None, window=5)
    calls = []
    original = room.scorer.tag
    monkeypatch.setattr(room.scorer, "tag", lambda c: calls.append(len(c.messages)) or
                        original(c))
    for i in range(12):
        room.add([("a", f"line {i}", None), ("b", "ok", None)])
    assert calls == [2] * 12 and room.seen == 24
    assert [m.index for m in room.messages] == [19, 20, 21, 22, 23]


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_ircs_verifies_the_certificate_and_reads_the_room(tmp_path, monkeypatch) -> None:
    """ircs:// is TLS with the certificate verified: a server whose certificate is trusted
    (SSL_CERT_FILE) is followed, the same server untrusted is a connection error."""
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while b"USER" not in await reader.readline():
                pass
            writer.write(b":srv 001 haechi :welcome\r\n")
            await reader.readline()
            writer.write(b":haechi!w@h JOIN #room\r\n:kid!u@h PRIVMSG #room :hi there\r\n")
            await writer.drain()
            await asyncio.sleep(5)

    async def first_batch(trusted: bool) -> list | str:
        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        status: list[str] = []
        room = IrcRoom(parse_room_url(f"ircs://127.0.0.1:{port}/#room"), "haechi",
                       status.append)
        if trusted:
            monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        else:
            monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        try:
            async with asyncio.timeout(3):
                async for batch in room.batches():
                    return batch
        except TimeoutError:
            return " ".join(status)
        finally:
            server.close()
        return []

    got = asyncio.run(first_batch(trusted=True))
    assert [(s.nick, s.text) for s in got] == [("kid", "hi there")]
    refused = asyncio.run(first_batch(trusted=False))
    assert isinstance(refused, str) and "CERTIFICATE_VERIFY_FAILED" in refused
