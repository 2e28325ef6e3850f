"""An IRC room follower: the small part of the client protocol a silent watcher needs (NICK,
USER, JOIN, PING/PONG, PRIVMSG and NOTICE, and the membership lines), on asyncio.

Written here rather than taken from a library: the protocol needed is a few dozen lines, and
the part that matters most, treating every byte from the server as hostile, is easier to see
and to test in code of our own. So:

- a line longer than IRC's 512 bytes (with its CR LF) is dropped whole, and so is the rest of
  it up to the next line feed; the buffer never holds more than one line;
- bytes are decoded as UTF-8 with errors="replace" (IRC has no declared encoding);
- a line that does not parse is skipped, never an exception out of the reader;
- what the server says (an ERROR's reason) is shown to the person running the watcher only
  with control characters removed (no terminal escapes).

The watcher never speaks in the room. It reconnects with backoff when the connection drops
and gives up on a room only when the server refuses the join itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from grooming.rooms import RoomError, RoomUrl, Said

MAX_LINE = 512  # RFC 1459/2812: a line, CR LF included, is at most 512 bytes
MAX_PARAMS = 15
READ_CHUNK = 65536
CONNECT_TIMEOUT = 15.0
# No 001 (welcome) or join within this long: the server is stuck, try again later.
REGISTER_TIMEOUT = 30.0
# Silence this long and we PING the server; this long again without a byte and the connection
# is taken for dead (a dropped route sends no FIN, so a read would wait for ever).
IDLE_PING = 90.0
# Reconnect backoff: the first pause, doubled per failure up to the last (a server restarting
# is back in seconds; one that is down for hours is asked once a minute, not hammered).
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
# A room this large is not followed member by member beyond this (mentions need members; a
# hostile server could otherwise grow the set without end with NAMES replies).
MAX_MEMBERS = 10_000
# Numerics by which a server refuses a join: the room cannot be watched, retrying won't help.
JOIN_REFUSED = {"403": "no such channel", "405": "joined too many channels",
                "471": "the channel is full", "473": "the channel is invite only",
                "474": "banned from the channel", "475": "the channel needs a key",
                "476": "bad channel name", "477": "the channel needs a registered nick",
                "437": "the channel is temporarily unavailable"}
NICK_TAKEN = {"432", "433", "436", "437"}
NICK_LEN = 9  # RFC 2812's minimum every server accepts (ngIRCd's default)

_COMMAND = re.compile(r"[A-Za-z]+|[0-9]{3}")
# mIRC colours (\x03NN[,NN]), hex colours (\x04RRGGBB[,RRGGBB]) and the toggles (bold, italic,
# underline, reverse, strike, monospace, reset): cues must read the words, not the codes.
_FORMATTING = re.compile(r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}"
                         r"(?:,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ADDRESS = re.compile(r"^\s*([^\s:,]{1,64})[:,](?:\s|$)")
_MEMBER_PREFIXES = "~&@%+"


@dataclass(frozen=True)
class IrcLine:
    prefix: str  # "" when the line has none
    command: str  # upper case
    params: tuple[str, ...]

    @property
    def nick(self) -> str:
        return self.prefix.split("!", 1)[0].split("@", 1)[0]

    @property
    def from_user(self) -> bool:
        """Said by a user (nick!user@host), not by a server."""
        return "!" in self.prefix or "@" in self.prefix


class LineFramer:
    """Splits the byte stream into lines of at most MAX_LINE bytes; longer ones are counted
    in `rejected` and dropped whole."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.discarding = False  # inside a too-long line, until its line feed
        self.rejected = 0

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) >= MAX_LINE and not self.discarding:
                    self.discarding = True
                    self.rejected += 1
                if self.discarding:
                    self.buffer.clear()
                return lines
            line = bytes(self.buffer[:end + 1])
            del self.buffer[:end + 1]
            if self.discarding:
                self.discarding = False
            elif len(line) > MAX_LINE:
                self.rejected += 1
            else:
                lines.append(line)


def parse_line(raw: bytes) -> IrcLine | None:
    """One line from the server, or None when it is not a well-formed IRC line."""
    if len(raw) > MAX_LINE or b"\x00" in raw:
        return None
    text = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
    if text.startswith("@"):  # IRCv3 tags (never asked for, so never trusted): skipped
        text = text.partition(" ")[2]
    prefix = ""
    if text.startswith(":"):
        prefix, _, text = text[1:].partition(" ")
        if not prefix:
            return None
    text = text.lstrip(" ")
    head, _, trailing = text.partition(" :")
    words = head.split()
    if not words or not _COMMAND.fullmatch(words[0]):
        return None
    params = words[1:]
    if _ or text.startswith(":"):
        params.append(trailing)
    if len(params) > MAX_PARAMS:
        return None
    return IrcLine(prefix, words[0].upper(), tuple(params))


def plain_text(text: str) -> str | None:
    """A PRIVMSG's text as words: formatting codes removed, a CTCP ACTION (`/me waves`) read
    as its text, any other CTCP request (VERSION, PING) None."""
    if text.startswith("\x01"):
        body = text.strip("\x01")
        if not body.upper().startswith("ACTION"):
            return None
        text = body[6:].strip()
    text = _CONTROL.sub("", _FORMATTING.sub("", text)).strip()
    return text or None


def printable(text: str, limit: int = 200) -> str:
    """Server-supplied words made safe to print on a terminal."""
    return _CONTROL.sub("", text)[:limit]


def _casefold(nick: str) -> str:
    # RFC 1459 case mapping: []\~ are the upper case of {}|^ (ngIRCd says "ascii", others
    # "rfc1459"; folding these too merges no two nicks a server keeps apart in practice).
    return nick.casefold().translate(str.maketrans("[]\\~", "{}|^"))


class IrcRoom:
    """Follows one channel on one server; `batches()` runs until cancelled."""

    def __init__(self, url: RoomUrl, nick: str, status: Callable[[str], None]) -> None:
        self.url = url
        self.wanted_nick = nick[:NICK_LEN]
        self.nick = self.wanted_nick
        self.status = status
        self.members: dict[str, str] = {}  # case-folded nick -> nick, the watcher excluded
        self.framer = LineFramer()
        self.registered = False  # welcomed (001) on the current connection
        self._writer: asyncio.StreamWriter | None = None

    async def batches(self) -> AsyncIterator[list[Said]]:
        wait = BACKOFF_FIRST
        try:
            while True:
                try:
                    async for batch in self._session():
                        wait = BACKOFF_FIRST  # joined and hearing the room: a good connection
                        if batch:
                            yield batch
                    reason = "the server closed the connection"
                except (OSError, EOFError, TimeoutError, ssl.SSLError) as exc:
                    reason = printable(str(exc) or type(exc).__name__)
                pause = min(wait, BACKOFF_MAX) * random.uniform(0.8, 1.2)
                self.status(f"{self.url.text}: connection lost ({reason}); reconnecting in "
                            f"{pause:.0f} s")
                await asyncio.sleep(pause)
                wait = min(wait * 2, BACKOFF_MAX)
        finally:
            await self._close()

    async def _session(self) -> AsyncIterator[list[Said]]:
        """One connection: register, join, then the room's lines until it drops."""
        context = ssl.create_default_context() if self.url.scheme == "ircs" else None
        reader, self._writer = await asyncio.wait_for(asyncio.open_connection(
            self.url.host, self.url.port, ssl=context,
            server_hostname=self.url.host if context else None), CONNECT_TIMEOUT)
        self.framer = LineFramer()
        self.members = {}
        self.nick = self.wanted_nick
        self.registered = False
        self._send(f"NICK {self.nick}")
        self._send(f"USER {self.wanted_nick} 0 * :Haechi room watcher")
        joined = False
        deadline = asyncio.get_running_loop().time() + REGISTER_TIMEOUT
        pinged = False
        try:
            while True:
                timeout = IDLE_PING if joined else deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    raise TimeoutError("no welcome or join from the server in time")
                try:
                    data = await asyncio.wait_for(reader.read(READ_CHUNK), timeout)
                except TimeoutError:
                    if not joined:
                        raise TimeoutError(
                            "no welcome or join from the server in time") from None
                    if pinged:
                        raise TimeoutError("the server stopped answering") from None
                    self._send("PING :haechi")
                    pinged = True
                    continue
                if not data:
                    return
                pinged = False
                batch: list[Said] = []
                for raw in self.framer.feed(data):
                    line = parse_line(raw)
                    if line is None:
                        continue
                    said = self._handle(line)
                    if said is not None:
                        batch.append(said)
                    if line.command == "JOIN" and _casefold(line.nick) == _casefold(
                            self.nick) and line.params and _casefold(
                            line.params[0]) == _casefold(self.url.channel) and not joined:
                        joined = True
                        self.status(f"{self.url.text}: joined {self.url.channel} as "
                                    f"{self.nick}")
                await self._flush()
                if joined:
                    yield batch
        finally:
            await self._close()

    def _handle(self, line: IrcLine) -> Said | None:
        """React to one line (answer PINGs, track members, refuse on a refused join); a
        message said in our channel is returned."""
        command, params = line.command, line.params
        ours = bool(params) and _casefold(params[0]) == _casefold(self.url.channel)
        if command == "PING":
            self._send(f"PONG :{printable(params[-1] if params else '', 400)}")
        elif command == "001":
            self.registered = True
            if params:
                self.nick = params[0]
            self._send(f"JOIN {self.url.channel}")
        elif command in NICK_TAKEN and not self.registered:
            # Our nick is taken or refused while registering: another, with digits.
            self.nick = f"{self.wanted_nick[:NICK_LEN - 3]}{random.randrange(1000):03d}"
            self._send(f"NICK {self.nick}")
        elif command in JOIN_REFUSED and len(params) >= 2 and _casefold(
                params[1]) == _casefold(self.url.channel):
            reason = printable(params[-1]) if len(params) > 2 else JOIN_REFUSED[command]
            raise RoomError(f"{self.url.text}: cannot join {self.url.channel}: "
                            f"{JOIN_REFUSED[command]} ({reason})")
        elif command == "353" and len(params) >= 4 and _casefold(params[2]) == _casefold(
                self.url.channel):
            for name in params[3].split():
                self._add(name.lstrip(_MEMBER_PREFIXES))
        elif command == "JOIN" and ours and line.from_user:
            self._add(line.nick)
        elif (command == "PART" and ours) or command == "QUIT":
            self.members.pop(_casefold(line.nick), None)
        elif command == "KICK" and ours and len(params) >= 2:
            if _casefold(params[1]) == _casefold(self.nick):
                raise EOFError(f"kicked from {self.url.channel}")
            self.members.pop(_casefold(params[1]), None)
        elif command == "NICK" and params and line.from_user:
            if _casefold(line.nick) == _casefold(self.nick):
                self.nick = params[0]
            elif self.members.pop(_casefold(line.nick), None) is not None:
                self._add(params[0])
        elif command == "ERROR":
            raise EOFError(f"the server said: {printable(params[-1] if params else '')}")
        elif command in ("PRIVMSG", "NOTICE") and ours and len(params) >= 2 \
                and line.from_user and _casefold(line.nick) != _casefold(self.nick):
            text = plain_text(params[1])
            if text is not None:
                return Said(line.nick, text, self._addressed(line.nick, text))
        return None

    def _add(self, nick: str) -> None:
        if nick and _casefold(nick) != _casefold(self.nick) and len(self.members) < MAX_MEMBERS:
            self.members[_casefold(nick)] = nick

    def _addressed(self, writer: str, text: str) -> str | None:
        """`kid: how old are you` is said to kid, when kid is in the room (and not the
        writer): a word followed by a colon is not a mention otherwise ("note: ...")."""
        found = _ADDRESS.match(text)
        if found is None:
            return None
        name = _casefold(found.group(1))
        if name == _casefold(writer):
            return None
        return self.members.get(name)

    def _send(self, line: str) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(line.encode("utf-8", errors="replace")[:MAX_LINE - 2] + b"\r\n")

    async def _flush(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            await self._writer.drain()

    async def _close(self) -> None:
        """Say goodbye if the connection is still up, and close it (never raises)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        with contextlib.suppress(Exception):
            if not writer.is_closing():
                writer.write(b"QUIT :Haechi watcher stopping\r\n")
                await asyncio.wait_for(writer.drain(), 2)
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 2)
