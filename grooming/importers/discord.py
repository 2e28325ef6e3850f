"""DiscordChatExporter's exports of one channel: JSON (`guild`, `channel`, `messages`) and CSV
(`AuthorID,Author,Date,Content,Attachments,Reactions`).

A speaker is keyed on the author's user id in both formats, so the same person has the same
pseudonym whichever format a channel was exported in (names change, ids do not).

System entries (a member joining, a pin, a recipient added, a thread started) carry the author
of the *event*, often the child who joined; they are dropped. A call is kept as a placeholder
(kind "media", as KakaoTalk's call lines are): someone placed it, and the export shows it. In
JSON they are read from `type`; CSV has no type column, so they are recognised by the fixed
English text the exporter writes in their place ("Joined the server.", "Pinned a message.").
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

from grooming.importers import (
    ChatImportError,
    append,
    decode_text,
    named,
    read_text,
    skipped,
)
from grooming.pseudonyms import Pseudonymiser
from grooming.schema import Conversation

# Message types a person wrote (Discord's numbers for exports that wrote them as numbers);
# every other type is a system notification.
_WRITTEN = {"Default", "Reply", "0", "19"}
_CALL = {"Call", "3"}
# What DiscordChatExporter writes as the content of a system notification in CSV.
_CSV_SYSTEM = re.compile(
    r"(Added a recipient\.|Added .+ to the group\.|Removed a recipient\.|Left the group\."
    r"|Removed .+ from the group\.|Changed the channel name[.:].*"
    r"|Changed the channel icon\.|Pinned a message\.|Started a thread\.|Joined the server\."
    r"|A poll has closed\.|.+'s poll .*has closed\.)", re.S)
_CSV_CALL = re.compile(r"Started a call(?: that lasted .+)?\.", re.S)
_CSV_HEADER = ["AuthorID", "Author", "Date", "Content", "Attachments", "Reactions"]
# The channel id DiscordChatExporter puts in its default file name ("... [1234].csv").
_CHANNEL_IN_NAME = re.compile(r"\[(\d{5,})\]")


def _time(value: Any) -> dt.datetime | None:
    """The time as the exporter wrote it; None when unreadable (a time is not worth a message).
    CSV dates follow the exporter's --locale and --date-format, so several layouts are tried."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    if text.isdigit():  # --date-format unix / unixms
        number = int(text)
        try:
            return dt.datetime.fromtimestamp(number / 1000 if number > 10**11 else number,
                                             dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    for layout in ("%m/%d/%Y %I:%M %p", "%d-%b-%y %I:%M %p", "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M",
                   "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M"):
        try:
            return dt.datetime.strptime(text, layout)
        except ValueError:
            continue
    return None


def _user_key(user: Any) -> str | None:
    if not isinstance(user, dict):
        return None
    key = user.get("id") or user.get("name")
    return str(key) if isinstance(key, (str, int)) and str(key).strip() else None


def _names(user: Any) -> list[str]:
    """What the room calls a user: the handle and the server nickname."""
    if not isinstance(user, dict):
        return []
    return [str(user[k]) for k in ("name", "nickname") if isinstance(user.get(k), str)]


def _media_text(message: dict[str, Any]) -> str | None:
    """The placeholder for a message with no text, or None if it has nothing at all."""
    for field, label in (("attachments", "<attachment>"), ("stickers", "<sticker>"),
                         ("embeds", "<embed>")):
        if isinstance(message.get(field), list) and message[field]:
            return label
    if isinstance(message.get("forwardedMessage"), dict):
        return "<forwarded message>"  # someone else's words, not the author's
    return None


class DiscordImporter:
    name = "DiscordChatExporter"

    def recognises(self, path: Path, head: bytes) -> bool:
        return head.lstrip().startswith(b"{") and b'"guild"' in head and b'"channel"' in head

    def load(self, path: Path, pseudonym: Pseudonymiser) -> list[Conversation]:
        data = json.loads(read_text(path))
        channel = data["channel"]
        conversation = Conversation(pseudonym(str(channel["id"]), "C"), "discord")
        messages = data["messages"]
        if not isinstance(messages, list):
            raise ChatImportError(f"{path}: `messages` is not a list")
        kept: list[tuple[dict[str, Any], str, str]] = []  # message, author key, kind
        for number, message in enumerate(messages):
            if not isinstance(message, dict):
                skipped(path, f"message {number}", "not an object")
                continue
            kind = str(message.get("type", "Default"))
            if kind not in _WRITTEN and kind not in _CALL:
                continue  # a join, pin, recipient or thread notice
            who = _user_key(message.get("author"))
            if who is None:
                skipped(path, f"message {number}", "no author")
                continue
            content = message.get("content")
            if kind in _CALL:
                kept.append(({**message, "content": "<call>"}, who, "media"))
            elif isinstance(content, str) and content.strip():
                kept.append((message, who, "text"))
            elif (placeholder := _media_text(message)) is not None:
                kept.append(({**message, "content": placeholder}, who, "media"))
        index = {str(m.get("id")): i for i, (m, _, _) in enumerate(kept) if m.get("id")}
        for message, who, kind in kept:
            reference = message.get("reference")
            reply_to = None
            if isinstance(reference, dict) and reference.get("type") != "Forward":
                reply_to = index.get(str(reference.get("messageId")))
            mentioned = message.get("mentions")
            mentions = tuple(pseudonym(key) for key in map(_user_key, mentioned)
                             if key is not None) if isinstance(mentioned, list) else ()
            append(conversation, _time(message.get("timestamp")), pseudonym(who),
                   message["content"], kind, reply_to, mentions)
        named(conversation, {name: pseudonym(who) for message, who, _ in kept
                             for name in _names(message.get("author"))})
        return [conversation]


class DiscordCsvImporter:
    name = "DiscordChatExporter CSV"

    def recognises(self, path: Path, head: bytes) -> bool:
        text = decode_text(head, complete=False) or ""
        first = text.lstrip("\ufeff").split("\n", 1)[0].strip().replace('"', "")
        return first.split(",") == _CSV_HEADER

    def load(self, path: Path, pseudonym: Pseudonymiser) -> list[Conversation]:
        channel = _CHANNEL_IN_NAME.search(path.stem)
        conversation = Conversation(pseudonym(channel[1] if channel else path.stem, "C"),
                                    "discord")
        rows = csv.reader(io.StringIO(read_text(path).lstrip("\ufeff"), newline=""))
        names: dict[str, str] = {}  # display name -> pseudonym, for names said in the text
        try:
            next(rows, None)  # the header
            for row in rows:
                if not row:
                    continue
                if len(row) < 4:
                    skipped(path, f"CSV line {rows.line_num}", f"{len(row)} columns, not 6")
                    continue
                author_id, author, when, content = (field.strip() for field in row[:4])
                attachments = row[4].strip() if len(row) > 4 else ""
                who = author_id or author
                if not who:
                    skipped(path, f"CSV line {rows.line_num}", "no author")
                    continue
                content = row[3]
                if content.strip():
                    if not attachments and _CSV_CALL.fullmatch(content.strip()):
                        kind = "media"
                    elif not attachments and _CSV_SYSTEM.fullmatch(content.strip()):
                        continue  # a join or pin notice
                    else:
                        kind = "text"
                else:
                    # No text: an attachment, or a sticker or embed (CSV carries neither).
                    kind, content = "media", "<attachment>" if attachments else "<no text>"
                append(conversation, _time(when), pseudonym(who), content, kind)
                if author:
                    names[author] = pseudonym(who)
        except csv.Error as exc:
            raise ChatImportError(f"{path}: looks like a DiscordChatExporter CSV export but "
                                  f"line {rows.line_num} could not be read: {exc}") from exc
        named(conversation, names)
        return [conversation]
