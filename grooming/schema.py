"""One schema for every chat export: a conversation is a list of messages, each with its time,
a pseudonymised speaker and the text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Message:
    index: int  # position in the conversation, from 0
    time: dt.datetime | None  # as the export gives it (exports rarely carry a zone)
    speaker: str  # a keyed pseudonym, never the name in the export
    text: str
    kind: str = "text"
    reply_to: int | None = None
    mentions: tuple[str, ...] = ()


@dataclass
class Conversation:
    id: str  # pseudonymised too: a chat's title often is a person's name
    source: str  # which export format it came from
    messages: list[Message] = field(default_factory=list)

    def add(self, time: dt.datetime | None, speaker: str, text: str) -> None:
        self.messages.append(Message(len(self.messages), time, speaker, text))
