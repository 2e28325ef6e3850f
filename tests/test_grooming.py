"""Grooming early warning: importers, pseudonyms, normalisation, scoring on the labelled suite,
the `haechi chats scan` contract, and alerts to a real SMTP server and a real webhook."""

from __future__ import annotations

import datetime as dt
import email
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from grooming.evaluation import evaluate, to_conversation
from grooming.excerpts import ExcerptStore
from grooming.importers import ChatImportError, load
from grooming.normalise import normalise
from grooming.pseudonyms import Pseudonymiser
from grooming.scan import default_scorer
from testkit.testweb.server import free_port
from tests.grooming_suite.build import load as load_suite
from tests.takedown_helpers import start_smtp

HAECHI = str(Path(sys.executable).with_name("haechi"))

KAKAO_PC = """홍길동 님과 카카오톡 대화
저장한 날짜 : 2026-11-20 21:40:11

--------------- 2026년 11월 20일 금요일 ---------------
[홍길동] [오후 8:01] 안녕 ㅎㅎ 뭐해?
[민지] [오후 8:02] 그냥 있어요
[홍길동] [오후 8:03] 너 몇 살이야?
[민지] [오후 8:03] 중2요
[홍길동] [오후 8:05] 와 나이보다 되게 성숙하다
[홍길동] [오후 8:06] 지금 집에 혼자 있어?
[민지] [오후 8:07] ㅇㅇ
[홍길동] [오후 8:08] 이건 우리만의 비밀이야
엄마한테 말하지 마
[홍길동] [오후 8:10] 사진 보낼래?
[홍길동] [오후 8:12] 토요일에 만나자 3시에 역 앞에서
"""
KAKAO_ANDROID = """홍길동 님과 카카오톡 대화
저장한 날짜 : 2026. 11. 20. 오후 9:40

2026년 11월 20일 오후 8:01, 홍길동 : 안녕
2026년 11월 20일 오전 12:03, 민지 : 네 안녕하세요
"""
KAKAO_IOS = """2026. 11. 20. 오후 8:01, 홍길동 : 안녕
2026. 11. 20. 오후 8:02, 민지 : 네
두 줄째
"""
FRIENDS = """지수 님과 카카오톡 대화
저장한 날짜 : 2026-11-20 21:40:11

--------------- 2026년 11월 20일 금요일 ---------------
[지수] [오후 8:01] 제주도 여행 어땠어?
[현우] [오후 8:02] 완전 좋았어 ㅋㅋ
[지수] [오후 8:03] 사진 보낼래?
[현우] [오후 8:04] ㅇㅇ 잠깐만
"""
TELEGRAM = {
    "name": "Kim", "type": "personal_chat", "id": 4242,
    "messages": [
        {"id": 1, "type": "message", "date": "2026-11-20T20:01:00", "from": "Kim Minji",
         "from_id": "user1", "text": "hi"},
        {"id": 2, "type": "service", "date": "2026-11-20T20:01:30", "actor": "Kim Minji",
         "action": "phone_call"},
        {"id": 3, "type": "message", "date": "2026-11-20T20:02:00", "from": "Stranger",
         "from_id": "user2", "text": ["how ", {"type": "bold", "text": "old"}, " r u?"]},
        {"id": 4, "type": "message", "date": "2026-11-20T20:02:30", "from": "Stranger",
         "from_id": "user2", "text": "", "photo": "photos/1.jpg"},
    ],
}
DISCORD = {
    "guild": {"id": "1", "name": "Gaming"}, "channel": {"id": "777", "name": "general"},
    "messages": [
        {"id": "1", "timestamp": "2026-11-20T20:01:00+00:00", "content": "add me on discord",
         "author": {"id": "55", "name": "player_one", "nickname": "P1"}},
        {"id": "2", "timestamp": "2026-11-20T20:02:00+00:00", "content": "",
         "author": {"id": "56", "name": "kid"}, "attachments": [{"url": "x.png"}]},
        {"id": "3", "timestamp": "2026-11-20T20:03:00+00:00", "content": "im 13 lol",
         "author": {"id": "56", "name": "kid"}},
    ],
}


@pytest.fixture
def pseudonym() -> Pseudonymiser:
    return Pseudonymiser(b"test-key")


def _write(folder: Path, name: str, content: str | dict, encoding: str = "utf-8") -> Path:
    path = folder / name
    if isinstance(content, dict):
        path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_bytes(content.encode(encoding))
    return path


def test_every_export_format_becomes_one_schema_with_pseudonyms(tmp_path, pseudonym) -> None:
    pc = load(_write(tmp_path, "pc.txt", KAKAO_PC), pseudonym)[0]
    assert pc.source == "kakaotalk" and len(pc.messages) == 10
    assert pc.messages[2].time == dt.datetime(2026, 11, 20, 20, 3)
    assert pc.messages[7].text == "이건 우리만의 비밀이야\n엄마한테 말하지 마"  # two lines
    assert {m.speaker for m in pc.messages} == {pseudonym("홍길동"), pseudonym("민지")}
    android = load(_write(tmp_path, "a.txt", KAKAO_ANDROID, "cp949"), pseudonym)[0]
    assert [m.time.hour for m in android.messages] == [20, 0]  # 오전 12시 is midnight
    ios = load(_write(tmp_path, "i.txt", KAKAO_IOS), pseudonym)[0]
    assert ios.messages[1].text == "네\n두 줄째"
    telegram = load(_write(tmp_path, "result.json", TELEGRAM), pseudonym)[0]
    # no service entry; the photo is a placeholder, not text
    said = [m for m in telegram.messages if m.kind == "text"]
    assert [m.text for m in said] == ["hi", "how old r u?"]
    assert said[1].speaker == pseudonym("user2")
    whole = {"about": "x", "chats": {"list": [TELEGRAM, {**TELEGRAM, "id": 5}]}}
    assert len(load(_write(tmp_path, "all.json", whole), pseudonym)) == 2
    discord = load(_write(tmp_path, "d.json", DISCORD), pseudonym)[0]
    assert discord.source == "discord" and [
        m.text for m in discord.messages if m.kind == "text"] == ["add me on discord", "im 13 lol"]
    everything = json.dumps([vars(m) for c in (pc, android, telegram, discord)
                             for m in c.messages], default=str, ensure_ascii=False)
    for name in ("홍길동", "민지", "Stranger", "player_one", "Kim Minji"):
        assert name not in everything.replace("홍길동 : ", "")
    assert pseudonym("홍길동") != Pseudonymiser(b"another key")("홍길동")


def test_unreadable_exports_are_clear_errors(tmp_path, pseudonym) -> None:
    with pytest.raises(ChatImportError, match="not a chat export"):
        load(_write(tmp_path, "notes.txt", "just some notes"), pseudonym)
    with pytest.raises(ChatImportError, match="Telegram"):
        load(_write(tmp_path, "broken.json", '{"messages": [{"type": "message", "from_id": '),
             pseudonym)
    with pytest.raises(ChatImportError, match="cannot be read"):
        load(tmp_path / "missing.txt", pseudonym)


def test_normalisation_reads_shorthand_repeats_and_slang() -> None:
    assert normalise("ㅇㅇ 집에 혼자 있어ㅋㅋㅋㅋㅋ").text == "응 집에 혼자 있어ㅋㅋ"
    assert normalise("영통 할래?").slang == ("영통 → 영상통화",)
    assert normalise("몇 살이야").compact == "몇살이야"
    english = normalise("asl? send me a pic plsssss")
    assert english.text == "age sex location? send me a picture pleasee" or \
        english.text.startswith("age sex location? send me a picture")
    assert normalise("im 13 yo").text == "i am 13 years old"


def test_the_same_request_is_harmless_between_friends_and_alarming_after_probing(
        tmp_path, pseudonym) -> None:
    from grooming.cues import rule_cues

    assert "media_request" in {c.label for c in rule_cues(normalise("사진 보낼래?"))}
    scorer = default_scorer()
    friends = scorer.score(load(_write(tmp_path, "f.txt", FRIENDS), pseudonym)[0])
    assert {s.tier for s in friends.values()} == {"none"}
    groomer = scorer.score(load(_write(tmp_path, "g.txt", KAKAO_PC), pseudonym)[0])
    suspect = groomer[pseudonym("홍길동")]
    assert suspect.tier == "urgent"  # a meeting, a place and a time, with a minor
    assert {"age_probe", "alone", "secrecy", "meeting"} <= set(suspect.stages)
    assert suspect.first_alert_message is not None and suspect.first_alert_message <= 7
    assert groomer[pseudonym("민지")].tier == "none"


def test_the_suite_meets_its_targets_on_wordings_the_classifier_never_saw() -> None:
    result = evaluate(load_suite("eval"), default_scorer())
    assert result["stage_recall_min"] >= 0.9, result["stage_recall"]
    assert result["false_alert_rate"] <= 0.02, result["false_alerts"]
    alerted, total = map(int, result["grooming_conversations_alerted"].split("/"))
    assert alerted / total >= 0.9
    assert result["median_first_alert_message"] <= 10
    # Every kind of hard negative is in the suite.
    assert set(result["negatives_by_kind"]) == {"parent_child", "teacher", "teen_peers",
                                                "adults_sexting", "gaming_banter",
                                                "adult_friends"}


def test_suite_conversations_convert_with_times() -> None:
    first = to_conversation(load_suite("eval")[0])
    assert first.messages[0].time is not None and first.messages[0].speaker in ("A", "B")


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        return


def test_scan_prints_the_contract_alerts_by_webhook_and_mail_and_keeps_only_flagged_excerpts(
        tmp_path, haechi_home) -> None:
    _Hook.received = []
    hook = HTTPServer(("127.0.0.1", free_port()), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    smtp_port = free_port()
    controller, mailbox = start_smtp(smtp_port)
    env = {**os.environ, "HAECHI_ALERT_WEBHOOK": f"http://127.0.0.1:{hook.server_port}/hook",
           "HAECHI_ALERT_EMAIL": "duty@agency.example",
           "HAECHI_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
           "HAECHI_PSEUDONYM_KEY": "k"}
    files = [_write(tmp_path, "groom.txt", KAKAO_PC), _write(tmp_path, "friends.txt", FRIENDS),
             _write(tmp_path, "notes.txt", "not a chat")]
    try:
        result = subprocess.run([HAECHI, "chats", "scan", "--json", *map(str, files)],
                                capture_output=True, text=True, env=env, timeout=120)
    finally:
        controller.stop()
        hook.shutdown()
    assert result.returncode == 1  # one file could not be read; the others were scanned
    assert "notes.txt" in result.stderr and "not a chat export" in result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["tier"] for r in rows] == ["urgent", "none"]
    groom = rows[0]
    for field in ("conversation", "speaker", "score", "tier", "stages", "evidence",
                  "first_alert_message"):
        assert field in groom
    assert groom["speaker"] == Pseudonymiser(b"k")("홍길동")
    assert all({"message", "time", "text", "stages"} <= set(e) for e in groom["evidence"])
    assert groom["evidence"][0]["time"].startswith("2026-11-20T20:")
    assert groom["alerts"] == {"webhook": "sent", "email": "sent"}
    assert [a["conversation"] for a in _Hook.received] == [groom["conversation"]]
    assert len(mailbox.messages) == 1
    mail = email.message_from_bytes(mailbox.messages[0].content)
    assert mail["To"] == "duty@agency.example" and "urgent" in mail["Subject"]
    body = mail.get_payload()[0].get_payload(decode=True).decode()
    assert "asks for secrecy" in body and "홍길동" not in body
    again = subprocess.run([HAECHI, "chats", "scan", "--json", str(files[0])],
                           capture_output=True, text=True, env=env, timeout=120)
    assert json.loads(again.stdout)["alerts"] == {"all": "already alerted at this tier"}
    assert len(mailbox.messages) == 1  # the agency is not told twice
    kept = ExcerptStore().all()
    assert len(kept) == 1 and kept[0]["conversation"] == groom["conversation"]
    assert "제주도" not in json.dumps(kept, ensure_ascii=False, default=str)  # never kept
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=91)
    assert ExcerptStore().purge(now=later) == 1 and ExcerptStore().all() == []


# Conversations written by hand outside the suite's phrase pools (its wordings fed a widening
# of the rules, so they guard that widening rather than measure accuracy).
OUTSIDE_GROOMING = {
    "en-1": [("A", "hey cutie, u still in school?"), ("B", "yeah 8th grade"),
             ("A", "you're gorgeous for real"), ("A", "where are your parents right now"),
             ("B", "at work"), ("A", "what's your snap"),
             ("A", "keep it private ok, your parents wouldn't understand"),
             ("A", "can i see a pic of you"),
             ("A", "i'll wait for you outside your school tomorrow at 3")],
    "ko-1": [("A", "학생이야?"), ("B", "네 중학생이요"), ("A", "진짜 예뻐 여신이네"),
             ("A", "지금 누구랑 있어?"), ("B", "혼자요"), ("A", "폰 사줄까?"),
             ("A", "이 얘기 딴 데 하지 마 아무도 모르게"), ("A", "얼굴 좀 보자 셀카 찍어줘"),
             ("A", "내가 너네 동네로 갈게 토요일 2시 어때")],
    "en-2": [("A", "how young are you?"), ("B", "13"), ("A", "you look mature"),
             ("A", "is anyone with you?"), ("B", "no my mom is at work"),
             ("A", "i'll give you money for it"), ("A", "send me a video"),
             ("A", "don't mention me to anyone")],
    "ko-2": [("A", "올해 몇이야"), ("B", "열네 살이요"), ("A", "너 같은 애 처음 봐"),
             ("A", "카톡 아이디 뭐야?"), ("A", "엄마 알면 안 돼"), ("A", "옷 벗어봐"),
             ("A", "한번 보자")],
}
OUTSIDE_BENIGN = {
    "mom-en": [("B", "Mom can you pick me up at 5 at the library?"),
               ("A", "ok honey. are you alone there?"),
               ("B", "yeah everyone left, i finished my homework"),
               ("A", "don't tell your brother about the present ok"),
               ("A", "send me a pic of the receipt"), ("A", "see you at 5 at the library")],
    "grandma-ko": [("B", "할머니 저 학원 끝났어요"), ("A", "우리 강아지 집에 혼자 있니?"),
                   ("B", "네 엄마 아직 안 왔어요"), ("A", "용돈 보내줄게 엄마한테는 비밀이다 ㅎㅎ"),
                   ("A", "사진 한 장 보내봐 보고 싶다"), ("A", "토요일에 할머니 집에 놀러 와")],
    "teen-date-en": [("A", "im in 9th grade lol"), ("B", "same, i'm 14"), ("A", "ur so cute"),
                     ("A", "send me a selfie"), ("B", "lol ok"),
                     ("A", "wanna hang out at the mall saturday"),
                     ("A", "dont tell anyone we're dating")],
    "adult-date-ko": [("A", "퇴근했어?"), ("B", "응 방금 회사 끝났어"), ("A", "오늘 너무 예쁘더라"),
                      ("A", "사진 보내줘"), ("A", "비밀인데 나 너 좋아해"),
                      ("A", "토요일 7시에 강남역에서 보자"), ("B", "좋아")],
    "coach-en": [("B", "coach is practice still on?"), ("A", "yes, 4pm at the field"),
                 ("A", "what grade are you in now?"), ("B", "8th"),
                 ("A", "send me a photo of the permission form"),
                 ("A", "don't forget your cleats")],
    "gamers-ko": [("A", "님 몇 살임?"), ("B", "15살인데 왜"), ("A", "ㅋㅋ 나도 15"),
                  ("A", "디코 아이디 줘"), ("A", "같이 랭겜 ㄱ"), ("B", "ㅇㅋ")],
    "tutor-ko": [("B", "선생님 숙제 사진 보낼게요"), ("A", "그래 사진 보내"),
                 ("A", "몇 학년이었지?"), ("B", "중2요"), ("A", "내일 4시에 학원에서 보자")],
}


def test_conversations_written_outside_the_suite() -> None:
    from grooming.schema import Conversation

    scorer = default_scorer()

    def tiers(chats: dict) -> dict[str, str]:
        out = {}
        for name, lines in chats.items():
            conversation = Conversation(name, "hand-written")
            for speaker, text in lines:
                conversation.add(None, speaker, text)
            states = scorer.score(conversation)
            out[name] = max((s.tier for s in states.values()),
                            key=("none", "review", "urgent").index)
        return out

    assert set(tiers(OUTSIDE_GROOMING).values()) <= {"review", "urgent"}
    assert set(tiers(OUTSIDE_BENIGN).values()) == {"none"}
