"""KakaoTalk's text export ("대화 내보내기"), in the PC and mobile layouts, Korean or English.

PC:      --------------- 2024년 1월 5일 금요일 ---------------
         [홍길동] [오후 1:20] 안녕
Android: 2024년 1월 5일 오후 1:20, 홍길동 : 안녕
iOS:     2024. 1. 5. 오후 1:20, 홍길동 : 안녕
English: [John] [1:20 PM] hi   /   Jan 5, 2024, 1:20 PM, John : hi

A line that starts no message continues the one before (a message with line breaks).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from grooming.importers import decode_text, read_text
from grooming.pseudonyms import Pseudonymiser
from grooming.schema import Conversation

_TITLE = re.compile(r"^\ufeff?(.+?) 님과 카카오톡 대화|^\ufeff?Talk_.*"
                    r"|^\ufeff?KakaoTalk Chats with (.+)")
_KO_DAY = re.compile(r"^-*\s*(\d{4})년 (\d{1,2})월 (\d{1,2})일 \S+요일\s*-*$")
_EN_DAY = re.compile(r"^-*\s*\w+, (\w+) (\d{1,2}), (\d{4})\s*-*$")
_PC = re.compile(r"^\[(.+?)\] \[(오전|오후|AM|PM)? ?(\d{1,2}):(\d{2}) ?(AM|PM)?\] (.*)$")
_ANDROID = re.compile(r"^(\d{4})년 (\d{1,2})월 (\d{1,2})일 (오전|오후) (\d{1,2}):(\d{2}), "
                      r"(.+?) : (.*)$")
_IOS = re.compile(r"^(\d{4})\. (\d{1,2})\. (\d{1,2})\. (오전|오후) (\d{1,2}):(\d{2}), "
                  r"(.+?) : (.*)$")
_EN_MOBILE = re.compile(r"^(\w{3,9}) (\d{1,2}), (\d{4}),? (?:at )?(\d{1,2}):(\d{2}) (AM|PM), "
                        r"(.+?) : (.*)$")
_MONTHS = {m: n for n, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"], 1)}


def _hour(hour: int, half: str | None) -> int:
    if half in ("오후", "PM") and hour != 12:
        return hour + 12
    if half in ("오전", "AM") and hour == 12:
        return 0
    return hour


def _month(name: str) -> int:
    return _MONTHS[name[:3].casefold()]


class KakaoImporter:
    name = "KakaoTalk"

    def recognises(self, path: Path, head: bytes) -> bool:
        text = decode_text(head, complete=False) or ""
        return "카카오톡 대화" in text[:400] or "KakaoTalk" in text[:400] or bool(
            re.search(r"^\[.+?\] \[(오전|오후) \d{1,2}:\d{2}\] ", text, re.M)
            or re.search(r"^\d{4}(년|\.) ?\d{1,2}(월|\.) ?\d{1,2}(일|\.) (오전|오후) \d{1,2}:\d{2},"
                         r" .+? : ", text, re.M))

    def load(self, path: Path, pseudonym: Pseudonymiser) -> list[Conversation]:
        lines = read_text(path).splitlines()
        title = _TITLE.match(lines[0]) if lines else None
        name = next((g for g in (title.groups() if title else ()) if g), None) or path.stem
        conversation = Conversation(pseudonym(name, "C"), "kakaotalk")
        day: dt.date | None = None
        # The open message: its time, speaker and lines (a message may span several).
        pending: tuple[dt.datetime | None, str, list[str]] | None = None

        def close() -> None:
            if pending is not None:
                conversation.add(pending[0], pseudonym(pending[1]), "\n".join(pending[2]))

        for line in lines:  # the title and "saved on" lines match no message
            if m := _KO_DAY.match(line):
                close()
                pending = None
                day = dt.date(int(m[1]), int(m[2]), int(m[3]))
            elif m := _EN_DAY.match(line):
                close()
                pending = None
                day = dt.date(int(m[3]), _month(m[1]), int(m[2]))
            elif m := _PC.match(line):
                close()
                hour = _hour(int(m[3]), m[2] or m[5])
                when = dt.datetime.combine(day, dt.time(hour, int(m[4]))) if day else None
                pending = (when, m[1], [m[6]])
            elif m := (_ANDROID.match(line) or _IOS.match(line)):
                close()
                when = dt.datetime(int(m[1]), int(m[2]), int(m[3]), _hour(int(m[5]), m[4]),
                                   int(m[6]))
                pending = (when, m[7], [m[8]])
            elif m := _EN_MOBILE.match(line):
                close()
                when = dt.datetime(int(m[3]), _month(m[1]), int(m[2]), _hour(int(m[4]), m[6]),
                                   int(m[5]))
                pending = (when, m[7], [m[8]])
            elif pending is not None and line.strip():
                pending[2].append(line)
            # Other lines: the "saved on" header, join/leave notices, blank lines.
        close()
        return [conversation]
