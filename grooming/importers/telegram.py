"""Telegram Desktop's JSON export: `result.json` of one chat, or of the whole account
(`chats.list`). Message text is a string or a list of strings and entity objects.

Speakers are keyed on `from_id` ("user123"; old exports wrote the bare number, read as
"user123" too so one person keeps one pseudonym across export versions). `service` entries
(joins, invites, pins) are dropped, calls kept as placeholders (someone placed them); a photo,
sticker, video or file without a caption is a media message.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from grooming.importers import ChatImportError, append, named, read_text, skipped
from grooming.pseudonyms import Pseudonymiser
from grooming.schema import Conversation

# What a message without text carries instead, in the order the placeholder is named by.
# A call is a service entry that someone placed: kept as a placeholder, as in KakaoTalk.
_CALLS = ("phone_call", "group_call")
_MEDIA = ("media_type", "photo", "file", "sticker_emoji", "poll", "contact_information",
          "location_information", "place_name", "game_title", "invoice_information")

_MARKERS = (b'"from_id"', b'"chats"', b'"type": "message"', b'"type": "service"',
            b'"date_unixtime"', b'"personal_chat"', b'"private_group"', b'_supergroup"',
            b'_channel"', b'"saved_messages"', b'"bot_chat"')


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", ""))
                       for part in value if isinstance(part, (str, dict)))
    return ""


def _user(value: Any) -> str | None:
    """The key of a Telegram user id as `from_id` spells it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return f"user{value}"
    if isinstance(value, str) and value.strip():
        return f"user{value}" if value.isdigit() else value
    return None


def _squash(name: str) -> str:
    return re.sub(r"[\W_]+", "", name).casefold()


def _mentions(message: dict[str, Any], by_name: dict[str, str]) -> list[str]:
    """Keys of the users a message mentions. `mention_name` carries the user id; a plain
    `@username` is kept only when it is a speaker's name here, because the export has no
    usernames and a handle in a message is as often another app's ("add my snap @x") as a
    member's, and an addressee who is not in the chat would misdirect the pair."""
    entities = message.get("text_entities")
    if not isinstance(entities, list):
        entities = message.get("text") if isinstance(message.get("text"), list) else []
    keys = []
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        key = None
        if entity.get("type") == "mention_name":
            key = _user(entity.get("user_id"))
        elif entity.get("type") == "mention" and isinstance(entity.get("text"), str):
            key = by_name.get(_squash(entity["text"]))
        if key:
            keys.append(key)
    return keys


class TelegramImporter:
    name = "Telegram Desktop"

    def recognises(self, path: Path, head: bytes) -> bool:
        # A room whose export opens with service entries (joins) has no from_id in its head.
        return head.lstrip().startswith(b"{") and (b'"messages"' in head or b'"chats"' in head) \
            and any(marker in head for marker in _MARKERS)

    def load(self, path: Path, pseudonym: Pseudonymiser) -> list[Conversation]:
        data = json.loads(read_text(path))
        chats = data["chats"]["list"] if "chats" in data else [data]
        if not isinstance(chats, list):
            raise ChatImportError(f"{path}: `chats.list` is not a list")
        return [self._chat(path, chat, pseudonym) for chat in chats]

    def _chat(self, path: Path, chat: dict[str, Any], pseudonym: Pseudonymiser) -> Conversation:
        conversation = Conversation(pseudonym(str(chat.get("id") or chat.get("name")), "C"),
                                    "telegram")
        messages = chat.get("messages", [])
        if not isinstance(messages, list):
            raise ChatImportError(f"{path}: `messages` of chat {chat.get('id')} is not a list")
        kept: list[tuple[dict[str, Any], str, str, str]] = []  # message, key, text, kind
        for number, message in enumerate(messages):
            if not isinstance(message, dict):
                skipped(path, f"message {number}", "not an object")
                continue
            call = message.get("type") == "service" and message.get("action") in _CALLS
            if message.get("type") != "message" and not call:
                continue  # joins, invites, pins
            sender, name = ("actor_id", "actor") if call else ("from_id", "from")
            who = _user(message.get(sender)) or (
                message[name] if isinstance(message.get(name), str) and message[name]
                else None)
            if who is None:
                skipped(path, f"message {message.get('id', number)}", "no sender")
                continue
            text = _text(message.get("text"))
            if call:
                kept.append((message, who, "<call>", "media"))
            elif text.strip():
                kept.append((message, who, text, "text"))
            elif media := next((m for m in _MEDIA if message.get(m)), None):
                label = message[media] if media == "media_type" else media
                kept.append((message, who, f"<{label}>", "media"))
        index = {m["id"]: i for i, (m, *_) in enumerate(kept)
                 if isinstance(m.get("id"), (int, str))}
        by_name = {_squash(m["from"]): who for m, who, _, _ in kept
                   if isinstance(m.get("from"), str) and _squash(m["from"])}
        for message, who, text, kind in kept:
            reply_to = None
            if "reply_to_peer_id" not in message:  # a reply to a message in another chat
                target = message.get("reply_to_message_id")
                reply_to = index.get(target) if isinstance(target, (int, str)) else None
            when = message.get("date")
            try:
                time = dt.datetime.fromisoformat(when) if isinstance(when, str) else None
            except ValueError:
                time = None
            append(conversation, time, pseudonym(who), text, kind, reply_to,
                   tuple(pseudonym(key) for key in _mentions(message, by_name)))
        named(conversation, {m["from"]: pseudonym(who) for m, who, _, _ in kept
                             if isinstance(m.get("from"), str)})
        return conversation
