"""Who each message is said to: grooming is one person working on another, also in a group.

In a chat of two the addressee is the other person. In a group room or a server channel it is
read, in order of how sure the export makes it, from:

1. a reply (Telegram's and Discord's reply reference);
2. a mention (`@name`), when it names someone other than the writer;
3. the writer's previous message, when this one follows it directly (a thought in three lines);
4. the writer's own latest addressee within TURN_WINDOW messages, when nobody has spoken to
   the writer since except by turn-taking (a bystander's "lol i need a healer" between two of
   a groomer's lines does not turn him to the bystander; a question put right after the
   writer's line does: "몇살이에요?" is answered);
5. the latest of the last TURN_WINDOW messages said *to the writer* (answering whoever spoke
   to you);
6. the previous message's writer (turn-taking).

None means nobody can be named (the first line of a room, a monologue).
"""

from __future__ import annotations

import re

from grooming.schema import Message

# How far back a message said to the writer still counts as the one being answered.
TURN_WINDOW = 4
_QUESTION = re.compile(r"\?|(니|냐|나요|까|래|임)\s*$")


def _asks(text: str) -> bool:
    return bool(_QUESTION.search(text))


def addressees(messages: list[Message]) -> list[str | None]:
    """The addressee of every message (media placeholders and all), by index."""
    speakers = {m.speaker for m in messages}
    out: list[str | None] = []
    guessed: list[bool] = []  # whether each addressee came from turn-taking alone
    for i, message in enumerate(messages):
        addressee, guess = _addressee(messages, out, guessed, i, message, speakers)
        out.append(addressee)
        guessed.append(guess)
    return out


def _addressee(messages: list[Message], found: list[str | None], guessed: list[bool], i: int,
               message: Message, speakers: set[str]) -> tuple[str | None, bool]:
    writer = message.speaker
    if message.reply_to is not None and 0 <= message.reply_to < i:
        replied = messages[message.reply_to].speaker
        if replied != writer:
            return replied, False
    for mentioned in message.mentions:
        if mentioned != writer:
            return mentioned, False
    if len(speakers) == 2:
        return next(s for s in speakers if s != writer), False
    if i and messages[i - 1].speaker == writer and found[i - 1] is not None:
        return found[i - 1], guessed[i - 1]
    window = range(i - 1, max(-1, i - 1 - TURN_WINDOW), -1)
    for j in window:
        if messages[j].speaker == writer:
            if found[j] is not None:
                return found[j], guessed[j]
            break
        if found[j] == writer and (not guessed[j] or _asks(messages[j].text)):
            break  # someone spoke (or put a question) to the writer since: rule 5 decides
    for j in window:
        if found[j] == writer and messages[j].speaker != writer:
            return messages[j].speaker, False
    for j in range(i - 1, -1, -1):
        if messages[j].speaker != writer:
            return messages[j].speaker, True
    return None, False
