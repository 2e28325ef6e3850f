"""Telegram Desktop's JSON export: `result.json` of one chat, or of the whole account
(`chats.list`). Message text is a string or a list of strings and entity objects."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from grooming.pseudonyms import Pseudonymiser
from grooming.schema import Conversation


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", ""))
                       for part in value)
    return ""


class TelegramImporter:
    name = "Telegram Desktop"

    def recognises(self, path: Path, head: bytes) -> bool:
        return head.lstrip().startswith(b"{") and (b'"messages"' in head or b'"chats"' in head) \
            and (b'"from_id"' in head or b'"personal_chat"' in head or b'"chats"' in head
                 or b'"type": "message"' in head)

    def load(self, path: Path, pseudonym: Pseudonymiser) -> list[Conversation]:
        data = json.loads(path.read_text(encoding="utf-8"))
        chats = data["chats"]["list"] if "chats" in data else [data]
        conversations = []
        for chat in chats:
            conversation = Conversation(pseudonym(str(chat.get("id") or chat.get("name")), "C"),
                                        "telegram")
            for message in chat.get("messages", []):
                if not isinstance(message, dict) or message.get("type") != "message":
                    continue  # joins, calls, pins
                text = _text(message.get("text"))
                if not text.strip():
                    continue  # a sticker or a photo alone
                who = str(message.get("from_id") or message.get("from") or "unknown")
                when = dt.datetime.fromisoformat(message["date"]) if message.get("date") \
                    else None
                conversation.add(when, pseudonym(who), text)
            conversations.append(conversation)
        return conversations
