"""Render the frozen grooming eval's hand-written scripts into real app export formats.

The conversations are written by hand in ``source/*.txt`` (one block per conversation) and
rendered once into ``chats/`` as KakaoTalk, Telegram Desktop and DiscordChatExporter files;
``labels.json`` is written next to them. The rendered files are the frozen eval: they are
committed and must not be regenerated with different content.

Script syntax, one conversation per block::

    === file_stem
    format: kakao_pc_ko | kakao_pc_en | kakao_android_ko | kakao_ios_ko | kakao_mobile_en
            | telegram_json | discord_json | discord_csv
    lang: ko | en
    grooming: yes | no
    kind: group, gift
    suspect: display name (or -)
    target: display name (or -)
    room: chat title
    start: 2024-03-05 21:15
    ---
    Name: message                 a real message
    * Name: message               the fair point (first message a careful moderator flags on)
    | continued line              a further line of the previous message
    @photo Name | @sticker Name | @deleted Name | @video Name | @call Name 03:12
    @join Name | @leave Name | @invite A > B | @pin Name
    @gap 45                       minutes to the next line
    @day 19:30                    next day, at that time (@day 3 19:30: three days later)

Real messages are the lines written by a participant with text; placeholders (photos,
stickers, deleted messages, calls) and system lines are not counted. ``items`` in the labels
spells each rendered line: ``m`` real message, ``p`` placeholder, ``s`` system line.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
WEEK_KO = ["월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"]
FORMATS = {
    "kakao_pc_ko": ".txt",
    "kakao_pc_en": ".txt",
    "kakao_android_ko": ".txt",
    "kakao_ios_ko": ".txt",
    "kakao_mobile_en": ".txt",
    "telegram_json": ".json",
    "discord_json": ".json",
    "discord_csv": ".csv",
}


@dataclass
class Item:
    kind: str  # msg, photo, sticker, deleted, video, call, join, leave, invite, pin
    when: datetime
    speaker: str = ""
    text: str = ""
    other: str = ""
    fair: bool = False
    signals: list[str] = field(default_factory=list)


@dataclass
class Conv:
    stem: str
    meta: dict[str, str]
    items: list[Item] = field(default_factory=list)


# A training split's line annotation: the signals the words carry, after two spaces, in braces.
SIGNALS = re.compile(r"  \{([a-z_,]+)\}$")


def parse(text: str, annotated: bool = False) -> list[Conv]:
    """The scripts' conversations; `annotated` for a training split, whose lines may end in
    `  {signal,...}` (kept on the item, never rendered)."""
    convs: list[Conv] = []
    for block in re.split(r"^=== ", text, flags=re.M)[1:]:
        head, _, body = block.partition("\n---\n")
        lines = head.splitlines()
        stem = lines[0].strip()
        meta: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                meta[key.strip()] = value.strip()
        rng = random.Random(stem)
        now = datetime.strptime(meta["start"], "%Y-%m-%d %H:%M")
        conv = Conv(stem, meta)
        for raw in body.splitlines():
            line = raw.rstrip()
            signals: list[str] = []
            found = SIGNALS.search(line) if annotated else None
            if found:
                signals = found.group(1).split(",")
                line = line[:found.start()].rstrip()
            if not line.strip() or line.startswith("#"):
                continue
            if line.startswith("| ") or line == "|":
                conv.items[-1].text += "\n" + line[2:]
                conv.items[-1].signals += signals
                continue
            if line.startswith("@gap "):
                now += timedelta(minutes=int(line.split()[1]))
                continue
            if line.startswith("@day"):
                parts = line.split()
                days = int(parts[1]) if len(parts) == 3 else 1
                hh, mm = parts[-1].split(":")
                now = (now + timedelta(days=days)).replace(hour=int(hh), minute=int(mm))
                continue
            if line.startswith("@"):
                word, _, rest = line[1:].partition(" ")
                if word == "invite":
                    a, _, b = rest.partition(" > ")
                    conv.items.append(Item("invite", now, a.strip(), other=b.strip()))
                elif word == "call":
                    name, _, dur = rest.rpartition(" ")
                    conv.items.append(Item("call", now, name.strip(), text=dur))
                else:
                    conv.items.append(Item(word, now, rest.strip()))
                now += timedelta(minutes=rng.choice([0, 0, 1, 1, 2]))
                continue
            fair = line.startswith("* ")
            if fair:
                line = line[2:]
            speaker, _, msg = line.partition(": ")
            conv.items.append(Item("msg", now, speaker.strip(), msg, fair=fair, signals=signals))
            now += timedelta(minutes=rng.choice([0, 0, 1, 1, 1, 2, 3, 5]))
        convs.append(conv)
    return convs


def ko_ampm(t: datetime) -> str:
    h = t.hour % 12 or 12
    return f"{'오전' if t.hour < 12 else '오후'} {h}:{t.minute:02d}"


def en_ampm(t: datetime) -> str:
    h = t.hour % 12 or 12
    return f"{h}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"


def ko_date(t: datetime) -> str:
    return f"{t.year}년 {t.month}월 {t.day}일 {WEEK_KO[t.weekday()]}"


def en_date(t: datetime) -> str:
    return f"{t.strftime('%A')}, {t.strftime('%B')} {t.day}, {t.year}"


KO_PLACEHOLDER = {"photo": "사진", "sticker": "이모티콘", "deleted": "삭제된 메시지입니다.",
                  "video": "동영상"}
EN_PLACEHOLDER = {"photo": "Photo", "sticker": "Emoticons", "deleted": "This message was deleted.",
                  "video": "Video"}


def kakao_text(it: Item, en: bool) -> str | None:
    """The message part of a Kakao line, or None for a system line."""
    if it.kind == "msg":
        return it.text
    if it.kind in KO_PLACEHOLDER:
        return (EN_PLACEHOLDER if en else KO_PLACEHOLDER)[it.kind]
    if it.kind == "call":
        return f"Voice Call {it.text}" if en else f"보이스톡 {it.text}"
    return None


def kakao_system(it: Item, en: bool) -> str:
    if en:
        return {"join": f"{it.speaker} joined this chatroom.",
                "leave": f"{it.speaker} left this chatroom.",
                "invite": f"{it.speaker} invited {it.other}.",
                "pin": f"{it.speaker} set a notice."}[it.kind]
    return {"join": f"{it.speaker}님이 들어왔습니다.",
            "leave": f"{it.speaker}님이 나갔습니다.",
            "invite": f"{it.speaker}님이 {it.other}님을 초대했습니다.",
            "pin": f"{it.speaker}님이 공지를 등록했습니다."}[it.kind]


def render_kakao(conv: Conv, fmt: str) -> str:
    en = fmt.endswith("_en")
    room = conv.meta["room"]
    last = conv.items[-1].when + timedelta(minutes=7)
    out: list[str] = []
    if fmt.startswith("kakao_pc"):
        if en:
            out += [f"KakaoTalk Chats with {room}",
                    f"Date Saved : {last:%Y-%m-%d %H:%M:%S}", ""]
        else:
            out += [f"{room} 님과 카카오톡 대화", f"저장한 날짜 : {last:%Y-%m-%d %H:%M:%S}", ""]
    elif en:
        out += [f"KakaoTalk Chats with {room}", f"Date Saved : {last.strftime('%B')} {last.day}, "
                f"{last.year}, {en_ampm(last)}", ""]
    elif fmt == "kakao_ios_ko":
        out += [f"{room} 님과 카카오톡 대화",
                f"저장한 날짜 : {last.year}. {last.month}. {last.day}. {ko_ampm(last)}", ""]
    else:
        out += [f"{room} 님과 카카오톡 대화",
                f"저장한 날짜 : {last.year}년 {last.month}월 {last.day}일 {ko_ampm(last)}", ""]
    day = None
    for it in conv.items:
        t = it.when
        if t.date() != day:
            day = t.date()
            out.append("")
            if fmt.startswith("kakao_pc"):
                out.append(f"--------------- {en_date(t) if en else ko_date(t)} ---------------")
            else:
                out.append(en_date(t) if en else ko_date(t))
        body = kakao_text(it, en)
        if fmt.startswith("kakao_pc"):
            stamp = None
            if body is not None:
                stamp = f"[{it.speaker}] [{en_ampm(t) if en else ko_ampm(t)}] {body}"
            out.append(stamp if stamp else kakao_system(it, en))
            continue
        if en:
            prefix = f"{t.strftime('%B')} {t.day}, {t.year}, {en_ampm(t)}"
        elif fmt == "kakao_ios_ko":
            prefix = f"{t.year}. {t.month}. {t.day}. {ko_ampm(t)}"
        else:
            prefix = f"{t.year}년 {t.month}월 {t.day}일 {ko_ampm(t)}"
        if body is not None:
            out.append(f"{prefix}, {it.speaker} : {body}")
        elif fmt == "kakao_ios_ko":
            out.append(f"{prefix}: {kakao_system(it, en)}")
        else:
            out.append(f"{prefix}, {kakao_system(it, en)}")
    return "\n".join(out) + "\n"


def tg_entities(text: str) -> tuple[str | list[object], list[dict[str, str]]]:
    """Telegram splits links and mentions into entities; plain text stays a string."""
    parts = re.split(r"(https?://\S+|@\w{4,})", text)
    if len(parts) == 1:
        return text, [{"type": "plain", "text": text}]
    mixed: list[object] = []
    ents: list[dict[str, str]] = []
    for i, part in enumerate(parts):
        if i % 2:
            kind = "link" if part.startswith("http") else "mention"
            mixed.append({"type": kind, "text": part})
            ents.append({"type": kind, "text": part})
        elif part:
            mixed.append(part)
            ents.append({"type": "plain", "text": part})
    return mixed, ents


def render_telegram(conv: Conv) -> str:
    names = sorted({it.speaker for it in conv.items if it.speaker} | {
        it.other for it in conv.items if it.other})
    ids = {n: 5000000000 + abs(hash_name(n)) % 999999999 for n in names}
    group = "group" in conv.meta.get("kind", "")
    msgs: list[dict[str, object]] = []
    for n, it in enumerate(conv.items, start=1):
        base: dict[str, object] = {"id": 1000 + n, "type": "message",
                                   "date": it.when.strftime("%Y-%m-%dT%H:%M:%S"),
                                   "date_unixtime": str(int(it.when.timestamp()))}
        uid = f"user{ids.get(it.speaker, 0)}"
        if it.kind in ("join", "leave", "invite", "pin", "call"):
            base.update({"type": "service", "actor": it.speaker, "actor_id": uid})
            if it.kind == "join":
                base["action"] = "join_group_by_link"
                base["inviter"] = "Group"
            elif it.kind == "leave":
                base["action"] = "remove_members"
                base["members"] = [it.speaker]
            elif it.kind == "invite":
                base["action"] = "invite_members"
                base["members"] = [it.other]
            elif it.kind == "pin":
                base["action"] = "pin_message"
                base["message_id"] = 1000 + max(1, n - 1)
            else:
                mm, ss = it.text.split(":")
                base["action"] = "phone_call"
                base["duration_seconds"] = int(mm) * 60 + int(ss)
                base["discard_reason"] = "hangup"
            base["text"] = ""
            base["text_entities"] = []
        else:
            base.update({"from": it.speaker, "from_id": uid})
            if it.kind == "photo":
                base.update({"photo": f"photos/photo_{n}@{it.when:%d-%m-%Y_%H-%M-%S}.jpg",
                             "width": 1280, "height": 960, "text": "", "text_entities": []})
            elif it.kind == "sticker":
                base.update({"file": f"stickers/sticker ({n}).webp", "media_type": "sticker",
                             "sticker_emoji": "😊", "width": 512, "height": 512,
                             "text": "", "text_entities": []})
            elif it.kind == "video":
                base.update({"file": f"video_files/video_{n}.mp4", "media_type": "video_file",
                             "mime_type": "video/mp4", "duration_seconds": 9,
                             "text": "", "text_entities": []})
            elif it.kind == "deleted":
                continue  # Telegram exports leave deleted messages out
            else:
                text, ents = tg_entities(it.text)
                base["text"] = text
                base["text_entities"] = ents
        msgs.append(base)
    chat: dict[str, object] = {
        "name": conv.meta["room"],
        "type": "private_supergroup" if group else "personal_chat",
        "id": 7000000000 + abs(hash_name(conv.stem)) % 99999999,
        "messages": msgs,
    }
    return json.dumps(chat, ensure_ascii=False, indent=1) + "\n"


def hash_name(name: str) -> int:
    h = 0
    for ch in name:
        h = (h * 131 + ord(ch)) % 2_147_483_647
    return h


def discord_author(name: str) -> dict[str, object]:
    handle = re.sub(r"[^a-z0-9_.]", "", name.lower().replace(" ", "_")) or f"user{hash_name(name)}"
    return {"id": str(300000000000000000 + hash_name(name)), "name": handle,
            "discriminator": "0000", "nickname": name, "color": None, "isBot": False,
            "roles": [], "avatarUrl": "https://cdn.discordapp.com/embed/avatars/0.png"}


def render_discord_json(conv: Conv) -> str:
    group = "group" in conv.meta.get("kind", "")
    msgs: list[dict[str, object]] = []
    for n, it in enumerate(conv.items, start=1):
        stamp = it.when.strftime("%Y-%m-%dT%H:%M:%S.000+09:00")
        m: dict[str, object] = {"id": str(1200000000000000000 + n * 4096), "type": "Default",
                                "timestamp": stamp, "timestampEdited": None,
                                "callEndedTimestamp": None, "isPinned": False, "content": "",
                                "author": discord_author(it.speaker), "attachments": [],
                                "embeds": [], "stickers": [], "reactions": [], "mentions": []}
        if it.kind == "msg":
            m["content"] = it.text
        elif it.kind in ("photo", "video"):
            ext = "png" if it.kind == "photo" else "mp4"
            m["attachments"] = [{"id": str(1300000000000000000 + n), "url":
                                 f"https://cdn.discordapp.com/attachments/1/{n}/IMG_{n}.{ext}",
                                 "fileName": f"IMG_{n}.{ext}", "fileSizeBytes": 482113}]
        elif it.kind == "sticker":
            m["stickers"] = [{"id": "749054660769218631", "name": "Wave", "format": "Apng",
                              "sourceUrl": "https://cdn.discordapp.com/stickers/749054660769218631.png"}]
        elif it.kind == "deleted":
            continue
        elif it.kind == "join":
            m["type"] = "GuildMemberJoin"
        elif it.kind == "leave":
            m["type"] = "RecipientRemove"
        elif it.kind == "invite":
            m["type"] = "RecipientAdd"
            m["mentions"] = [discord_author(it.other)]
        elif it.kind == "pin":
            m["type"] = "ChannelPinnedMessage"
            m["reference"] = {"messageId": str(1200000000000000000 + (n - 1) * 4096),
                              "channelId": "1100000000000000001", "guildId": None}
        elif it.kind == "call":
            mm, ss = it.text.split(":")
            m["type"] = "Call"
            m["callEndedTimestamp"] = (it.when + timedelta(minutes=int(mm), seconds=int(ss))
                                       ).strftime("%Y-%m-%dT%H:%M:%S.000+09:00")
        msgs.append(m)
    doc = {
        "guild": ({"id": "1000000000000000001", "name": conv.meta["room"],
                   "iconUrl": "https://cdn.discordapp.com/icons/1/a.png"} if group else
                  {"id": "0", "name": "Direct Messages",
                   "iconUrl": "https://cdn.discordapp.com/embed/avatars/0.png"}),
        "channel": {"id": "1100000000000000001",
                    "type": "GuildTextChat" if group else "DirectTextChat",
                    "categoryId": "1100000000000000000" if group else None,
                    "category": "Text Channels" if group else "Private",
                    "name": "general" if group else conv.meta["room"], "topic": None},
        "dateRange": {"after": None, "before": None},
        "exportedAt": (conv.items[-1].when + timedelta(minutes=9)).strftime(
            "%Y-%m-%dT%H:%M:%S.0000000+09:00"),
        "messages": msgs,
        "messageCount": len(msgs),
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def render_discord_csv(conv: Conv) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(["AuthorID", "Author", "Date", "Content", "Attachments", "Reactions"])
    for n, it in enumerate(conv.items, start=1):
        a = discord_author(it.speaker)
        stamp = it.when.strftime("%Y-%m-%dT%H:%M:%S.0000000+09:00")
        if it.kind == "msg":
            w.writerow([a["id"], a["name"], stamp, it.text, "", ""])
        elif it.kind in ("photo", "video"):
            ext = "png" if it.kind == "photo" else "mp4"
            w.writerow([a["id"], a["name"], stamp, "",
                        f"https://cdn.discordapp.com/attachments/1/{n}/IMG_{n}.{ext}", ""])
        elif it.kind == "join":
            w.writerow([a["id"], a["name"], stamp, "Joined the server.", "", ""])
        elif it.kind == "pin":
            w.writerow([a["id"], a["name"], stamp, "Pinned a message.", "", ""])
        elif it.kind == "call":
            w.writerow([a["id"], a["name"], stamp, f"Started a call that lasted {it.text}.", "",
                        ""])
        elif it.kind == "sticker":
            w.writerow([a["id"], a["name"], stamp, "", "", ""])
    return buf.getvalue()


def speaker_keys(name: str, fmt: str) -> list[str]:
    """What an importer may key a speaker on: the display name and the export's user ids."""
    if fmt.startswith("discord"):
        author = discord_author(name)
        return [name, str(author["name"]), str(author["id"])]
    if fmt == "telegram_json":
        return [name, f"user{5000000000 + abs(hash_name(name)) % 999999999}"]
    return [name]


def codes(conv: Conv, fmt: str) -> str:
    out = []
    for it in conv.items:
        if it.kind == "deleted" and fmt.startswith(("telegram", "discord")):
            continue
        if fmt == "discord_csv" and it.kind in ("leave", "invite", "deleted"):
            continue
        out.append("m" if it.kind == "msg" else "p" if it.kind in
                   ("photo", "sticker", "deleted", "video", "call") else "s")
    return "".join(out)


def main(here: Path = HERE, annotated: bool = False) -> None:
    """Render `here`/source into `here`/chats and `here`/labels.json (the dev and training
    splits reuse this renderer on their own folders; `annotated`: the training split's line
    signals go into each label's `signals`, by real-message number from 1)."""
    labels: dict[str, dict[str, object]] = {}
    (here / "chats").mkdir(exist_ok=True)
    for src in sorted((here / "source").glob("*.txt")):
        for conv in parse(src.read_text(encoding="utf-8"), annotated):
            fmt = conv.meta["format"]
            name = conv.stem + FORMATS[fmt]
            if fmt.startswith("kakao"):
                data = render_kakao(conv, fmt)
                bom = "\ufeff" if fmt.startswith("kakao_pc") else ""
                (here / "chats" / name).write_text(bom + data, encoding="utf-8", newline="\r\n"
                                                   if fmt.startswith("kakao_pc") else "\n")
            elif fmt == "telegram_json":
                (here / "chats" / name).write_text(render_telegram(conv), encoding="utf-8")
            elif fmt == "discord_json":
                (here / "chats" / name).write_text(render_discord_json(conv), encoding="utf-8")
            else:
                (here / "chats" / name).write_text(render_discord_csv(conv), encoding="utf-8")
            real = [it for it in conv.items if it.kind == "msg"]
            fair = [i for i, it in enumerate(real, start=1) if it.fair]
            grooming = conv.meta["grooming"] == "yes"
            if grooming != bool(fair):
                raise SystemExit(f"{conv.stem}: fair point and label disagree")
            speakers = {it.speaker for it in real}
            for key in ("suspect", "target"):
                if conv.meta.get(key, "-") != "-" and conv.meta[key] not in speakers:
                    raise SystemExit(f"{conv.stem}: {key} {conv.meta[key]} never speaks")
            names = speaker_keys(conv.meta["suspect"], fmt) if grooming else []
            labels[name] = {
                "grooming": grooming,
                "suspect": conv.meta["suspect"] if grooming else None,
                "suspect_names": names,
                "target": None if conv.meta.get("target", "-") == "-" else conv.meta["target"],
                "fair_point": fair[0] if fair else None,
                "language": conv.meta["lang"],
                "format": fmt,
                "kind": [k.strip() for k in conv.meta["kind"].split(",")],
                "messages": len(real),
                "speakers": len(speakers),
                "speaker_keys": {s: speaker_keys(s, fmt) for s in sorted(speakers)},
                "items": codes(conv, fmt),
                "batch": src.stem,
            }
            if annotated:
                labels[name]["signals"] = {str(i): it.signals for i, it in
                                           enumerate(real, start=1) if it.signals}
    (here / "labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=1) + "\n",
                                      encoding="utf-8")
    print(f"{len(labels)} conversations")


if __name__ == "__main__":
    main()
