"""Chat-export importers: one module per format, each an `Importer` in IMPORTERS (adding a
format adds a module and a line). `load(path)` picks the importer that recognises the file.

Rules every importer keeps, so that the scorer sees one conversation whatever the app:

- System entries (joins, leaves, invites, pins, calls logged by the app, date separators) are
  not messages: they are dropped and get no index, so a child joining a room never "says"
  anything and a notice is never glued onto the message before it.
- Media placeholders (a photo, a sticker, a deleted message, a call bubble a person sent) are
  messages of kind "media": they keep an index, so indices, replies and turn-taking match what
  the person exporting the chat sees, but the scorer reads no text in them.
- `reply_to` and `mentions` are filled where the export says so; a speaker, a mentioned user
  and a replied-to author are pseudonymised by the same key (the app's user id where the
  export has one, else the display name).
- One broken entry is skipped (and logged) rather than losing the rest of the file; a file
  that is recognised but yields no message at all is an error, never an empty result.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import logging
import re
from pathlib import Path
from typing import Protocol

from grooming.pseudonyms import Pseudonymiser
from grooming.schema import Conversation, Message

log = logging.getLogger(__name__)


class ChatImportError(ValueError):
    """A file no importer can read; the message says why."""


class Importer(Protocol):
    name: str

    def recognises(self, path: Path, head: bytes) -> bool:
        """Whether the file looks like this format (from its name and first 64 kB)."""

    def load(self, path: Path, pseudonym: Pseudonymiser) -> list[Conversation]:
        """Every conversation in the file, speakers already pseudonymised."""


def _importers() -> list[Importer]:
    from grooming.importers.discord import DiscordCsvImporter, DiscordImporter
    from grooming.importers.kakao import KakaoImporter
    from grooming.importers.telegram import TelegramImporter

    return [TelegramImporter(), DiscordImporter(), DiscordCsvImporter(), KakaoImporter()]


# A whole Telegram account's export of years of text is tens of MB; a file far larger than that
# is not a chat export worth holding in memory whole (JSON is parsed in one piece).
MAX_EXPORT_BYTES = 512 * 1024 * 1024


def load(path: Path, pseudonym: Pseudonymiser) -> list[Conversation]:
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(65536)
    except OSError as exc:
        raise ChatImportError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if size > MAX_EXPORT_BYTES:
        raise ChatImportError(f"{path}: {size // 2**20:,} MB is more than a chat export "
                              f"(limit {MAX_EXPORT_BYTES // 2**20} MB)")
    for importer in _importers():
        if importer.recognises(path, head):
            try:
                conversations = importer.load(path, pseudonym)
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                # A hostile or broken export (nesting thousands deep, a message that is a
                # number) is this file's error, never the end of the run.
                if isinstance(exc, ChatImportError):
                    raise
                raise ChatImportError(f"{path}: looks like a {importer.name} export but could "
                                      f"not be read: {exc}") from exc
            if not any(m.kind == "text" for c in conversations for m in c.messages):
                # A layout the importer half-knows reads as "nothing said" (or only calls and
                # photos); reporting that as a clean scan would tell a parent there is nothing
                # to worry about.
                raise ChatImportError(f"{path}: looks like a {importer.name} export but no "
                                      "message could be read from it (an unknown layout or "
                                      "an export without text)")
            return conversations
    raise ChatImportError(f"{path}: not a chat export Haechi knows (KakaoTalk text export, "
                          "Telegram Desktop result.json, DiscordChatExporter JSON or CSV)")


def append(conversation: Conversation, time: dt.datetime | None, speaker: str, text: str,
           kind: str = "text", reply_to: int | None = None,
           mentions: tuple[str, ...] = ()) -> Message:
    """Add a message with its kind, reply and mentions (`Conversation.add` makes text only),
    indexed by its position so indices stay what the export shows."""
    message = Message(len(conversation.messages), time, speaker, text, kind, reply_to,
                      tuple(dict.fromkeys(mentions)))
    conversation.messages.append(message)
    return message


# What may follow a name in Korean (a title, then a vocative or a particle: "콩이님", "밤톨님은",
# "민지야"); then nothing word-like, so a name inside a longer word is not one.
_ADDRESS_ENDING = (r"(?:님|씨|쌤|형|누나|언니|오빠)?(?:아|야|은|는|이|가|도|한테|께|이랑|랑)?"
                   r"(?![\w])")


def named(conversation: Conversation, names: dict[str, str]) -> None:
    """Fill the mentions of text messages that name another speaker without the export's
    mention ("콩이님 집 지어줄까요?", "lily u there?"): in a group room that is who the line
    is said to. `names` maps display names to pseudonyms; names shorter than two characters,
    and messages the export already gave mentions, are left alone."""
    patterns = [(re.compile(rf"(?<![\w@]){re.escape(name)}{_ADDRESS_ENDING}", re.IGNORECASE),
                 person) for name, person in names.items() if len(name.strip()) >= 2]
    if len({person for _, person in patterns}) < 3:
        return  # between two people the addressee is the other one anyway
    for i, message in enumerate(conversation.messages):
        if message.kind != "text" or message.mentions:
            continue
        # In the order the names are said (the first one named is who the line is said to),
        # the longer name first where two start together ("Jen K" before "Jen").
        found = sorted((hit.start(), hit.start() - hit.end(), person)
                       for pattern, person in patterns
                       if person != message.speaker and (hit := pattern.search(message.text)))
        said = tuple(dict.fromkeys(person for *_, person in found))
        if said:
            conversation.messages[i] = dataclasses.replace(message, mentions=said)


def skipped(path: Path, where: str, reason: object) -> None:
    """One entry the importer could not read: said, and the rest of the file still read."""
    log.warning("%s: %s skipped: %s", path, where, reason)


# KakaoTalk on Windows wrote CP949 (Korean ANSI) for years; newer exports are UTF-8.
# UTF-16 only with its byte-order mark (without one, any even-length bytes would "decode").
ENCODINGS = ("utf-8-sig", "cp949")


def decode_text(data: bytes, complete: bool = True) -> str | None:
    """The text in the first encoding that reads it (None if none does); `complete=False`
    for the head of a file, which may end in the middle of a character."""
    encodings = ("utf-16",) if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ENCODINGS
    for encoding in encodings:
        try:
            return codecs.getincrementaldecoder(encoding)().decode(data, final=complete)
        except UnicodeDecodeError:
            continue
    return None


def read_text(path: Path) -> str:
    text = decode_text(path.read_bytes())
    if text is None:
        raise ChatImportError(f"{path}: not UTF-8, UTF-16 or CP949 text")
    return text
