"""Live chat rooms, one module per URL scheme (as Scrapy has one download handler per scheme):
`open_room(url)` parses a room URL and returns the client that follows it.

A room client yields batches of `Said`: what one read from the network brought, so a burst in a
busy room is scored once, not once per line. It reconnects by itself when the connection drops
and raises `RoomError` only when the room itself refuses us (banned, invite only, no such
channel): retrying that would only hammer the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit


class RoomError(RuntimeError):
    """A room that cannot be watched (a bad URL, a refused join); the message says why."""


@dataclass(frozen=True)
class Said:
    """One line said in the room: the writer's nickname, the text (formatting codes removed),
    and the present member it is addressed to by a leading `nick:` or `nick,`, if any."""

    nick: str
    text: str
    mention: str | None = None


@dataclass(frozen=True)
class RoomUrl:
    scheme: str
    host: str
    port: int
    channel: str
    text: str  # as given, for messages to the person running the watcher

    @property
    def key(self) -> str:
        """What names the room whatever the transport: the same channel on the same server
        over TLS or not is one conversation (the port differs between the two)."""
        return f"irc://{self.host.casefold()}/{self.channel.casefold()}"


class Room(Protocol):
    url: RoomUrl

    def batches(self) -> AsyncIterator[list[Said]]:
        """What is said in the room, batch by batch, until cancelled; RoomError if refused."""


DEFAULT_PORTS = {"irc": 6667, "ircs": 6697}
CHANNEL_PREFIXES = "#&+!"
MAX_CHANNEL = 50  # RFC 2812's limit on a channel name


def parse_room_url(text: str) -> RoomUrl:
    """`irc://host[:port]/#channel` or `ircs://...` (TLS); `#` may be written `%23` or left
    out (`irc://host/channel`)."""
    parts = urlsplit(text.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise RoomError(f"{text}: not a room URL Haechi knows (irc://host[:port]/#channel, "
                        "ircs://host[:port]/#channel)")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise RoomError(f"{text}: bad port ({exc})") from exc
    host = parts.hostname
    if not host:
        raise RoomError(f"{text}: no host")
    channel = f"#{unquote(parts.fragment)}" if parts.fragment else unquote(parts.path[1:])
    if channel and channel[0] not in CHANNEL_PREFIXES:
        channel = f"#{channel}"
    if len(channel) < 2 or len(channel) > MAX_CHANNEL or any(
            c in " ,:\x07" or ord(c) < 32 for c in channel):
        raise RoomError(f"{text}: no channel, or not a valid channel name (irc://host/#channel)")
    return RoomUrl(scheme, host, port, channel, text)


def open_room(url: RoomUrl, nick: str, status: Callable[[str], None]) -> Room:
    """The client for the URL's scheme; `status` receives plain-words progress (joined,
    reconnecting) for stderr."""
    from grooming.rooms.irc import IrcRoom

    schemes: dict[str, Callable[[RoomUrl, str, Callable[[str], None]], Room]] = {
        "irc": IrcRoom, "ircs": IrcRoom}
    return schemes[url.scheme](url, nick, status)
