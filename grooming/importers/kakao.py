"""KakaoTalk's text export ("대화 내보내기"), in the PC and mobile layouts, Korean or English.

PC:           --------------- 2024년 1월 5일 금요일 ---------------
              [홍길동] [오후 1:20] 안녕
PC English:   --------------- Friday, January 5, 2024 ---------------
              [John] [1:20 PM] hi
Android:      2024년 1월 5일 금요일                      (a day line)
              2024년 1월 5일 오후 1:20, 홍길동 : 안녕
iOS:          2024. 1. 5. 오후 1:20, 홍길동 : 안녕
English:      January 5, 2024, 1:20 PM, John : hi     (Android and iOS, English locale)
Older Android English writes the time first: 1:20 PM, Jan 5, 2024, John : hi

A line that starts no message continues the one before (a message with line breaks, blank
lines in it kept). Mobile layouts stamp notices too ("<time>, X님이 들어왔습니다.", iOS
"<time>: ..."), so a stamped line with no "name : " is a notice; the PC layout writes notices
bare, so there they are known by their wording, and are dropped rather than glued onto the
message before. Photos, emoticons, deleted messages and call bubbles are media messages.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from grooming.importers import append, decode_text, named, read_text
from grooming.pseudonyms import Pseudonymiser
from grooming.schema import Conversation

_TITLE = re.compile(r"^\ufeff?(.+?) 님과 카카오톡 대화|^\ufeff?Talk_.*"
                    r"|^\ufeff?KakaoTalk Chats with (.+)")
_SAVED = re.compile(r"^\ufeff?(저장한 날짜|Date Saved)\s*:")
_MONTHS = {m: n for n, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"], 1)}
_MON = r"(?P<mon>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?" \
         r"|Sep(?:t|tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
_HALF = r"(?P<half>오전|오후|AM|PM|am|pm)"
_HALF2 = r"(?: ?(?P<half2>AM|PM|am|pm))?"

# Day lines (no time): PC ones between dashes, mobile ones bare.
_DAYS = [
    re.compile(r"^-*\s*(?P<y>\d{4})년 (?P<m>\d{1,2})월 (?P<d>\d{1,2})일 \S+요일\s*-*$"),
    re.compile(r"^-*\s*(?P<y>\d{4})\. (?P<m>\d{1,2})\. (?P<d>\d{1,2})\.? \S+요일\s*-*$"),
    re.compile(rf"^-*\s*[A-Z][a-z]+day, {_MON} (?P<d>\d{{1,2}}), (?P<y>\d{{4}})\s*-*$"),
    re.compile(rf"^-*\s*[A-Z][a-z]+day, (?P<d>\d{{1,2}}) {_MON} (?P<y>\d{{4}})\s*-*$"),
]
_PC = re.compile(rf"^\[(?P<who>.+?)\] \[(?:{_HALF} ?)?(?P<H>\d{{1,2}}):(?P<M>\d{{2}})"
                 rf"{_HALF2}\] (?P<text>.*)$")
# The stamp that opens a mobile line, in every layout; what follows it is read apart.
_STAMPS = [
    re.compile(rf"^(?P<y>\d{{4}})년 (?P<m>\d{{1,2}})월 (?P<d>\d{{1,2}})일 (?:{_HALF} )?"
               r"(?P<H>\d{1,2}):(?P<M>\d{2})"),
    re.compile(rf"^(?P<y>\d{{4}})\. ?(?P<m>\d{{1,2}})\. ?(?P<d>\d{{1,2}})\.? (?:{_HALF} )?"
               rf"(?P<H>\d{{1,2}}):(?P<M>\d{{2}}){_HALF2}"),
    re.compile(rf"^{_MON} (?P<d>\d{{1,2}}), (?P<y>\d{{4}}),? "
               rf"(?:at )?(?P<H>\d{{1,2}}):(?P<M>\d{{2}}){_HALF2}"),
    re.compile(rf"^(?P<d>\d{{1,2}}) {_MON} (?P<y>\d{{4}}),? "
               rf"(?:at )?(?P<H>\d{{1,2}}):(?P<M>\d{{2}}){_HALF2}"),
    re.compile(rf"^(?P<H>\d{{1,2}}):(?P<M>\d{{2}}){_HALF2}, "
               rf"{_MON} (?P<d>\d{{1,2}}), (?P<y>\d{{4}})"),
]
_SAID = re.compile(r"^, (?P<who>.+?) : (?P<text>.*)$")
_NOTICE_AFTER_STAMP = re.compile(r"^[,:] ?\S")
# Notices the PC layout writes without a stamp (Korean and English, group and open chats).
_NOTICE = re.compile(
    r"^.{1,60}?님이 (들어왔습니다|나갔습니다|입장했습니다|퇴장했습니다"
    r"|입장하셨습니다|퇴장하셨습니다|방장이 되었습니다|부방장이 되었습니다"
    r"|공지를 등록했습니다|채팅방을 나갔습니다)"
    r"\.?(\s*(타인, 기관|운영정책).*)?$"
    r"|^.{1,60}?님이 .{1,200}?님을 (초대했습니다|초대하였습니다|내보냈습니다)\.?$"
    r"|^.{1,60}?님을 내보냈습니다\.?$|^채팅방 (관리자가|이름이|사진이) .*$"
    r"|^운영정책을 위반한 메시지로 신고 접수 시 카카오톡 이용에 제한이 있을 수 있습니다\.?$"
    r"|^타인, 기관 등의 사칭에 유의해 주세요\..*$|^메시지가 가려졌습니다\.?$"
    r"|^.{1,60}? (joined|left) this chatroom\.?$|^.{1,60}? invited .{1,200}?\.$"
    r"|^.{1,60}? (has been|was) (removed|kicked) from this chatroom\.?$"
    r"|^.{1,60}? (set|registered) a notice\.?$|^.{1,60}? is now the host\.?$")
# A message that is only a placeholder for something not in the text file.
_PLACEHOLDER = re.compile(
    r"^(사진|사진 \d+장|동영상|이모티콘|음성메시지|삭제된 메시지입니다\.?|파일: .+"
    r"|<(사진|동영상) 읽지 않음>"
    r"|(보이스톡|페이스톡) ?(해요|취소|\d{1,2}:\d{2}(:\d{2})?)?|통화시간 \d{1,2}:\d{2}(:\d{2})?"
    r"|Photo|\d+ photos|Video|Emoticons?|Sticker|Voice (Note|Message)|File: .+"
    r"|This message was deleted\.?|Deleted message|Message deleted\.?"
    r"|(Voice Call|Face ?Talk|Video Call) ?(\d{1,2}:\d{2}(:\d{2})?|canceled|cancelled)?)$")


def _hour(hour: int, half: str | None) -> int:
    half = (half or "").upper()
    if half in ("오후", "PM") and hour != 12:
        return hour + 12
    if half in ("오전", "AM") and hour == 12:
        return 0
    return hour


def _month(name: str) -> int:
    return _MONTHS[name[:3].casefold()]


def _date(m: re.Match[str]) -> dt.date:
    groups = m.groupdict()
    month = int(groups["m"]) if groups.get("m") else _month(groups["mon"])
    return dt.date(int(groups["y"]), month, int(groups["d"]))


def _stamp(line: str) -> tuple[dt.datetime, str] | None:
    """The time a mobile line opens with, and the rest of the line."""
    for pattern in _STAMPS:
        if m := pattern.match(line):
            groups = m.groupdict()
            half = groups.get("half") or groups.get("half2")
            try:
                when = dt.datetime.combine(_date(m), dt.time(_hour(int(m["H"]), half),
                                                             int(m["M"])))
            except ValueError:
                return None  # "2024년 13월 ...": not a stamp, so a line of text
            return when, line[m.end():]
    return None


class KakaoImporter:
    name = "KakaoTalk"

    def recognises(self, path: Path, head: bytes) -> bool:
        text = decode_text(head, complete=False) or ""
        if "카카오톡 대화" in text[:400] or "KakaoTalk" in text[:400]:
            return True
        lines = text.splitlines()[:200]
        return any(_PC.match(line) or ((s := _stamp(line)) and _SAID.match(s[1]))
                   for line in lines)

    def load(self, path: Path, pseudonym: Pseudonymiser) -> list[Conversation]:
        lines = read_text(path).splitlines()
        title = _TITLE.match(lines[0]) if lines else None
        name = next((g for g in (title.groups() if title else ()) if g), None) or path.stem
        conversation = Conversation(pseudonym(name, "C"), "kakaotalk")
        said: list[tuple[dt.datetime | None, str, list[str]]] = []
        day: dt.date | None = None
        # The open message: its time, speaker and lines (a message may span several).
        pending: tuple[dt.datetime | None, str, list[str]] | None = None
        mobile = False  # whether lines carry their own stamp (and so do notices)
        for number, line in enumerate(lines):
            if (number == 0 and title) or _SAVED.match(line):
                continue
            if day_line := next((m for p in _DAYS if (m := p.match(line))), None):
                pending = None
                try:
                    day = _date(day_line)
                except ValueError:
                    day = None
            elif m := _PC.match(line):
                hour = _hour(int(m["H"]), m["half"] or m["half2"])
                when = None
                if day is not None and hour < 24 and int(m["M"]) < 60:
                    when = dt.datetime.combine(day, dt.time(hour, int(m["M"])))
                pending = (when, m["who"], [m["text"]])
                said.append(pending)
            elif stamped := _stamp(line):
                when, rest = stamped
                if m := _SAID.match(rest):
                    mobile = True
                    pending = (when, m["who"], [m["text"]])
                    said.append(pending)
                elif not rest.strip() or _NOTICE_AFTER_STAMP.match(rest):
                    # A stamped notice, or the time-only line Android writes above messages.
                    pending = None
                elif pending is not None:
                    pending[2].append(line)  # a date typed in a message ("2024. 3. 5.에 봐")
            elif not mobile and _NOTICE.match(line.strip()):
                pending = None  # a bare PC notice line, never a line of the message before
            elif pending is not None:
                pending[2].append(line)
        names = sorted({who for _, who, _ in said}, key=lambda who: (-len(who), who))
        for when, who, parts in said:
            text = "\n".join(parts).rstrip()
            kind = "media" if _PLACEHOLDER.match(text.strip()) else "text"
            append(conversation, when, pseudonym(who), text, kind,
                   mentions=_mentioned(text, names, pseudonym) if kind == "text" else ())
        named(conversation, {who: pseudonym(who) for who in names})
        return [conversation]


def _mentioned(text: str, names: list[str], pseudonym: Pseudonymiser) -> tuple[str, ...]:
    """KakaoTalk writes a mention as "@Name " at the start of the message; only a Name that
    speaks in this file counts (longest first, so "@Jen K" is not read as "@Jen")."""
    if not text.startswith("@"):
        return ()
    for name in names:
        rest = text[1 + len(name):]
        if text[1:].startswith(name) and (not rest or not (rest[0].isalnum() or rest[0] == "_")):
            return (pseudonym(name),)
    return ()
