"""DiscordChatExporter's JSON export: one channel, with `guild`, `channel` and `messages`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from grooming.pseudonyms import Pseudonymiser
from grooming.schema import Conversation


class DiscordImporter:
    name = "DiscordChatExporter"

    def recognises(self, path: Path, head: bytes) -> bool:
        return head.lstrip().startswith(b"{") and b'"guild"' in head and b'"channel"' in head

    def load(self, path: Path, pseudonym: Pseudonymiser) -> list[Conversation]:
        data = json.loads(path.read_text(encoding="utf-8"))
        conversation = Conversation(pseudonym(str(data["channel"]["id"]), "C"), "discord")
        for message in data["messages"]:
            if not isinstance(message, dict):
                continue
            text = message.get("content") or ""
            if not text.strip():
                continue
            author = message.get("author") or {}
            who = str(author.get("id") or author.get("name") or "unknown")
            when = dt.datetime.fromisoformat(message["timestamp"]) \
                if message.get("timestamp") else None
            conversation.add(when, pseudonym(who), text)
        return [conversation]
