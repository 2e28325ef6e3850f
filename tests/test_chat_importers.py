"""Chat-export importers, format by format, on files written as the real exporters write them:
system entries are not messages (a child joining a room says nothing), placeholders are media
messages that keep their index, multi-line messages stay whole, replies and mentions point at
the right message and person, and a recognised file with nothing readable is an error."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from grooming.importers import ChatImportError, load
from grooming.pseudonyms import Pseudonymiser
from grooming.schema import Conversation

P = Pseudonymiser(b"test-key")


def _write(folder: Path, name: str, content: str | dict, encoding: str = "utf-8") -> Path:
    path = folder / name
    if isinstance(content, dict):
        path.write_text(json.dumps(content, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        path.write_bytes(content.encode(encoding))
    return path


def _one(path: Path) -> Conversation:
    [conversation] = load(path, P)
    return conversation


def _texts(conversation: Conversation) -> list[str]:
    return [m.text for m in conversation.messages if m.kind == "text"]


# --- DiscordChatExporter JSON -----------------------------------------------------------------

def _author(uid: str, name: str) -> dict:
    return {"id": uid, "name": name, "discriminator": "0000", "nickname": name.title(),
            "color": None, "isBot": False, "roles": [], "avatarUrl": "https://cdn/a.png"}


def _dc(mid: str, kind: str, author: dict, content: str = "", **extra: object) -> dict:
    return {"id": mid, "type": kind, "timestamp": "2025-03-03T21:15:00.123+09:00",
            "timestampEdited": None, "callEndedTimestamp": None, "isPinned": False,
            "content": content, "author": author, "attachments": [], "embeds": [],
            "stickers": [], "reactions": [], "mentions": [], "inlineEmojis": [], **extra}


CHANNEL = "1100000000000000077"
# DiscordChatExporter's default file name carries the channel id.
CSV_NAME = f"Game Server - Text - general [{CHANNEL}].csv"
ADULT, KID, OTHER = _author("111", "nightowl"), _author("222", "kiddo"), _author("333", "sam")
DISCORD = {
    "guild": {"id": "9", "name": "Game Server", "iconUrl": None},
    "channel": {"id": CHANNEL, "type": "GuildTextChat", "categoryId": "7",
                "category": "Text", "name": "general", "topic": None},
    "dateRange": {"after": None, "before": None}, "exportedAt": "2025-03-04T00:00:00+09:00",
    "messages": [
        _dc("1", "GuildMemberJoin", KID, "Joined the server."),
        _dc("2", "Default", ADULT, "welcome! how old r u"),
        _dc("3", "Default", KID, "13\nwhy"),
        _dc("4", "Default", KID, "", attachments=[{"id": "5", "url": "https://cdn/IMG_1.png",
                                                    "fileName": "IMG_1.png",
                                                    "fileSizeBytes": 1000}]),
        _dc("5", "Reply", ADULT, "cute. add me, dont tell ur mom",
            reference={"type": "Default", "messageId": "3", "channelId": CHANNEL, "guildId": "9"},
            mentions=[KID]),
        _dc("6", "ChannelPinnedMessage", OTHER, "Pinned a message.",
            reference={"type": "Default", "messageId": "5", "channelId": CHANNEL, "guildId": "9"}),
        _dc("7", "Call", ADULT, "Started a call that lasted 3 minutes."),
        _dc("8", "Default", OTHER, "", stickers=[{"id": "1", "name": "Wave", "format": "Apng",
                                                 "sourceUrl": "https://cdn/s.png"}]),
        _dc("9", "Reply", KID, "ok",
            reference={"type": "Default", "messageId": "12345", "channelId": CHANNEL}),
        _dc("10", "RecipientAdd", ADULT, "Added sam to the group.", mentions=[OTHER]),
    ],
    "messageCount": 10,
}


def test_discord_json_system_entries_media_replies_and_mentions(tmp_path: Path) -> None:
    conversation = _one(_write(tmp_path, "general.json", DISCORD))
    messages = conversation.messages
    assert [(m.text, m.kind) for m in messages] == [
        ("welcome! how old r u", "text"), ("13\nwhy", "text"), ("<attachment>", "media"),
        ("cute. add me, dont tell ur mom", "text"), ("<call>", "media"), ("<sticker>", "media"),
        ("ok", "text")]
    # The child's join is no message of the child; the pin is nobody's words; the call is a
    # placeholder of the one who placed it, as in KakaoTalk.
    assert messages[0].speaker == P("111") and messages[1].speaker == P("222")
    assert len({m.speaker for m in messages if m.kind == "text"}) == 2
    assert messages[3].reply_to == 1  # reference.messageId "3" is the child's "13\nwhy"
    assert messages[3].mentions == (P("222"),)  # by user id, as the author is keyed
    assert messages[4].speaker == P("111")  # the caller
    assert messages[6].reply_to is None  # replied-to message not in the file
    assert messages[1].time == dt.datetime(2025, 3, 3, 21, 15, 0, 123000,
                                           dt.timezone(dt.timedelta(hours=9)))
    assert [m.index for m in messages] == list(range(7))


def test_discord_json_only_system_entries_is_an_error(tmp_path: Path) -> None:
    export = {**DISCORD, "messages": [DISCORD["messages"][0], DISCORD["messages"][5]]}
    with pytest.raises(ChatImportError, match="no message could be read"):
        load(_write(tmp_path, "joins.json", export), P)


def test_discord_json_one_broken_message_does_not_lose_the_rest(tmp_path: Path) -> None:
    export = {**DISCORD, "messages": [7, _dc("1", "Default", "nobody", "x"),
                                      {"type": "Default", "content": 5, "author": KID},
                                      *DISCORD["messages"]]}
    assert len(_one(_write(tmp_path, "broken.json", export)).messages) == 7


# --- DiscordChatExporter CSV ------------------------------------------------------------------

# As DiscordChatExporter writes it: an unquoted header, every field quoted, quotes doubled,
# line breaks inside a field, system notices as fixed text.
DISCORD_CSV = (
    'AuthorID,Author,Date,Content,Attachments,Reactions\n'
    '"222","kiddo","2025-03-03T21:14:00.0000000+09:00","Joined the server.","",""\n'
    '"111","nightowl","2025-03-03T21:15:00.0000000+09:00","hey, how old r u?","",""\n'
    '"222","kiddo","2025-03-03T21:16:00.0000000+09:00","12\nalmost 13 ""lol""","","😂 (1)"\n'
    '"222","kiddo","2025-03-03T21:17:00.0000000+09:00","",'
    '"https://cdn.discordapp.com/attachments/1/2/IMG_2.png",""\n'
    '"111","nightowl","2025-03-03T21:18:00.0000000+09:00","Pinned a message.","",""\n'
    '"111","nightowl","2025-03-03T21:19:00.0000000+09:00",'
    '"Started a call that lasted 12 minutes.","",""\n'
    '"333","sam","2025-03-03T21:20:00.0000000+09:00","","",""\n'
    '"111","nightowl","3/3/2025 9:21 PM","keep this between us ok","",""\n'
)


def test_discord_csv_imports_with_multiline_media_and_system_rows_dropped(
        tmp_path: Path) -> None:
    conversation = _one(_write(tmp_path, CSV_NAME, DISCORD_CSV))
    assert [(m.text, m.kind) for m in conversation.messages] == [
        ("hey, how old r u?", "text"), ('12\nalmost 13 "lol"', "text"),
        ("<attachment>", "media"), ("Started a call that lasted 12 minutes.", "media"),
        ("<no text>", "media"), ("keep this between us ok", "text")]
    assert conversation.messages[0].speaker == P("111")  # AuthorID, as the JSON importer
    assert conversation.messages[5].time == dt.datetime(2025, 3, 3, 21, 21)
    assert conversation.source == "discord"


def test_discord_csv_and_json_agree_on_speakers_and_channel(tmp_path: Path) -> None:
    from_json = _one(_write(tmp_path, "general.json", DISCORD))
    from_csv = _one(_write(tmp_path, CSV_NAME, DISCORD_CSV))
    assert from_json.id == from_csv.id
    assert {m.speaker for m in from_csv.messages if m.kind == "text"} == {
        m.speaker for m in from_json.messages if m.kind == "text"}


def test_discord_csv_with_a_quoted_header_only_notices_or_a_broken_field(tmp_path: Path) -> None:
    quoted = DISCORD_CSV.replace("AuthorID,Author,Date,Content,Attachments,Reactions",
                                 '"AuthorID","Author","Date","Content","Attachments","Reactions"')
    assert len(_one(_write(tmp_path, "q.csv", quoted)).messages) == 6
    notices = "\n".join(DISCORD_CSV.splitlines()[:2]) + "\n"
    with pytest.raises(ChatImportError, match="no message could be read"):
        load(_write(tmp_path, "n.csv", notices), P)
    huge = DISCORD_CSV + '"1","x","2025-03-03","' + "a" * 300_000 + '","",""\n'
    with pytest.raises(ChatImportError, match=r"huge\.csv"):
        load(_write(tmp_path, "huge.csv", huge), P)


# --- Telegram Desktop -------------------------------------------------------------------------

def _tg(mid: int, who: str, uid: str, text: object = "", **extra: object) -> dict:
    return {"id": mid, "type": "message", "date": "2025-03-03T21:15:00",
            "date_unixtime": "1741004100", "from": who, "from_id": uid, "text": text,
            "text_entities": [{"type": "plain", "text": text}] if isinstance(text, str)
            and text else [], **extra}


TELEGRAM = {
    "name": "Study group", "type": "private_supergroup", "id": 1234, "messages": [
        {"id": 1, "type": "service", "date": "2025-03-03T21:10:00", "actor": "Mina",
         "actor_id": "user222", "action": "join_group_by_link", "inviter": "Group",
         "text": "", "text_entities": []},
        _tg(2, "Mina", "user222", "hi everyone"),
        _tg(3, "Jay Park", "user111", "", photo="photos/photo_1@03-03-2025_21-15-00.jpg",
            width=1280, height=960),
        _tg(4, "Mina", "user222", "nice pic", reply_to_message_id=3),
        _tg(5, "Jay Park", "user111", ["thanks ", {"type": "mention_name", "text": "Mina",
                                                    "user_id": 222}, " how old are you?"],
            text_entities=[{"type": "plain", "text": "thanks "},
                           {"type": "mention_name", "text": "Mina", "user_id": 222},
                           {"type": "plain", "text": " how old are you?"}],
            reply_to_message_id=2),
        _tg(6, "Mina", "user222", ["add my insta ", {"type": "mention", "text": "@mina_art"}],
            text_entities=[{"type": "plain", "text": "add my insta "},
                           {"type": "mention", "text": "@mina_art"}],
            reply_to_message_id=1),
        _tg(7, "Jay Park", "user111", ["@jaypark", " here"],
            text_entities=[{"type": "mention", "text": "@jaypark"},
                           {"type": "plain", "text": " here"}], reply_to_message_id=999),
        _tg(8, "Mina", "user222", "", file="stickers/sticker.webp", media_type="sticker",
            sticker_emoji="😊"),
        {"id": 9, "type": "service", "date": "2025-03-03T21:30:00", "actor": "Jay Park",
         "actor_id": "user111", "action": "phone_call", "duration_seconds": 192,
         "text": "", "text_entities": []},
        _tg(10, "Mina", "user222", "line one\nline two", date="not a date"),
    ]}


def test_telegram_service_media_replies_and_mentions(tmp_path: Path) -> None:
    conversation = _one(_write(tmp_path, "result.json", TELEGRAM))
    messages = conversation.messages
    assert [(m.text, m.kind) for m in messages] == [
        ("hi everyone", "text"), ("<photo>", "media"), ("nice pic", "text"),
        ("thanks Mina how old are you?", "text"), ("add my insta @mina_art", "text"),
        ("@jaypark here", "text"), ("<sticker>", "media"), ("<call>", "media"),
        ("line one\nline two", "text")]
    assert messages[0].speaker == P("user222") and messages[1].speaker == P("user111")
    assert messages[2].reply_to == 1  # the photo keeps its index, so the reply lands on it
    assert messages[3].reply_to == 0 and messages[3].mentions == (P("user222"),)
    assert messages[4].reply_to is None  # a reply to the service entry (the join)
    assert messages[4].mentions == ()  # another app's handle is nobody in this chat
    assert messages[5].reply_to is None  # not in the file
    assert messages[5].mentions == (P("user111"),)  # @jaypark is the speaker "Jay Park"
    assert messages[7].speaker == P("user111")  # the call is the caller's placeholder
    assert messages[8].time is None


def test_telegram_numeric_ids_key_as_the_string_form(tmp_path: Path) -> None:
    export = {**TELEGRAM, "messages": [{**_tg(1, "Mina", "user222", "hi"), "from_id": 222}]}
    assert _one(_write(tmp_path, "old.json", export)).messages[0].speaker == P("user222")


def test_telegram_only_service_entries_is_an_error(tmp_path: Path) -> None:
    export = {**TELEGRAM, "messages": [TELEGRAM["messages"][0], TELEGRAM["messages"][8]]}
    with pytest.raises(ChatImportError, match="no message could be read"):
        load(_write(tmp_path, "result.json", export), P)


# --- KakaoTalk --------------------------------------------------------------------------------

KAKAO_PC_KO = (
    "\ufeff수학 스터디 님과 카카오톡 대화\r\n저장한 날짜 : 2025-03-04 22:00:00\r\n\r\n"
    "\r\n--------------- 2025년 3월 3일 월요일 ---------------\r\n"
    "[쌤] [오후 9:15] 숙제 다 했니?\r\n"
    "민지님이 들어왔습니다.\r\n"
    "[민지] [오후 9:16] 네\r\n이제 자요\r\n"
    "쌤님이 수진님을 초대했습니다.\r\n"
    "[민지] [오후 9:17] 사진\r\n"
    "[수진] [오전 12:05] @민지 내일 봐\r\n"
    "수진님이 나갔습니다.\r\n"
    "[쌤] [오후 9:20] 삭제된 메시지입니다.\r\n"
    "\r\n--------------- 2025년 3월 4일 화요일 ---------------\r\n"
    "[쌤] [오후 7:00] 보이스톡 03:12\r\n"
    "[쌤] [오후 7:05] 잘 자\r\n"
)
KAKAO_PC_EN = (
    "\ufeffKakaoTalk Chats with Team\r\nDate Saved : 2025-03-04 22:00:00\r\n\r\n"
    "\r\n--------------- Monday, March 3, 2025 ---------------\r\n"
    "[Coach Dan] [9:15 PM] practice at 5\r\n"
    "Lily joined this chatroom.\r\n"
    "[Lily] [9:16 PM] ok\r\nsee you\r\n"
    "Coach Dan invited Mark.\r\n"
    "[Lily] [9:17 PM] Photo\r\n"
    "Mark left this chatroom.\r\n"
    "[Coach Dan] [12:01 AM] @Lily bring water\r\n"
)
KAKAO_ANDROID_KO = (
    "민지 님과 카카오톡 대화\n저장한 날짜 : 2025년 3월 4일 오후 10:00\n\n\n"
    "2025년 3월 3일 월요일\n"
    "2025년 3월 3일 오후 9:15, 아저씨 : 뭐해?\n"
    "2025년 3월 3일 오후 9:15, 민지님이 들어왔습니다.\n"
    "2025년 3월 3일 오후 9:16, 민지 : 그냥\n누워있어\n"
    "2025년 3월 3일 오후 9:17\n"
    "2025년 3월 3일 오후 9:17, 민지 : 이모티콘\n"
    "2025년 3월 3일 오후 9:18, 아저씨님이 나갔습니다.\n"
)
KAKAO_IOS_KO = (
    "민지 님과 카카오톡 대화\n저장한 날짜 : 2025. 3. 4. 오후 10:00\n\n\n"
    "2025년 3월 3일 월요일\n"
    "2025. 3. 3. 오후 9:15: 아저씨님이 민지님을 초대했습니다.\n"
    "2025. 3. 3. 오후 9:15, 아저씨 : 안녕\n"
    "2025. 3. 3. 오후 9:16, 민지 : 누구세요\n진짜 누구\n"
    "2025. 3. 3. 오후 9:17, 민지 : 동영상\n"
    "2025. 3. 3. 오후 9:18: 민지님이 나갔습니다.\n"
)
KAKAO_MOBILE_EN = (
    "KakaoTalk Chats with Mom\nDate Saved : March 4, 2025, 10:00 PM\n\n\n"
    "Monday, March 3, 2025\n"
    "March 3, 2025, 9:15 PM, Mom : pick you up at 3\n"
    "March 3, 2025, 9:15 PM, Dad joined this chatroom.\n"
    "March 3, 2025, 9:16 PM, Lily : ok\n\nthanks\n"
    "March 3, 2025, 9:17 PM, Lily : Emoticons\n"
    "March 3, 2025, 9:18 PM, Dad left this chatroom.\n"
)
KAKAO_ANDROID_EN_TIME_FIRST = (
    "KakaoTalk Chats with Mom\nDate Saved : 10:00 PM, Mar 4, 2025\n\n\n"
    "Monday, March 3, 2025\n"
    "9:15 PM, Mar 3, 2025, Mom : pick you up at 3\n"
    "9:15 PM, Mar 3, 2025, Dad joined this chatroom.\n"
    "9:16 PM, Mar 3, 2025, Lily : ok\nthanks\n"
    "9:17 PM, Mar 3, 2025, Lily : Photo\n"
    "9:18 PM, Mar 3, 2025, Mom : @Lily this message was long\nand kept\n"
)


def test_kakao_pc_korean_notices_dropped_placeholders_media_mentions(tmp_path: Path) -> None:
    conversation = _one(_write(tmp_path, "KakaoTalkChats.txt", KAKAO_PC_KO))
    messages = conversation.messages
    assert [(m.text, m.kind) for m in messages] == [
        ("숙제 다 했니?", "text"), ("네\n이제 자요", "text"), ("사진", "media"),
        ("@민지 내일 봐", "text"), ("삭제된 메시지입니다.", "media"), ("보이스톡 03:12", "media"),
        ("잘 자", "text")]
    assert len({m.speaker for m in messages}) == 3
    assert messages[3].mentions == (P("민지"),) and messages[3].speaker == P("수진")
    assert messages[3].time == dt.datetime(2025, 3, 3, 0, 5)
    assert messages[6].time == dt.datetime(2025, 3, 4, 19, 5)


def test_kakao_pc_english(tmp_path: Path) -> None:
    conversation = _one(_write(tmp_path, "KakaoTalkChats.txt", KAKAO_PC_EN))
    assert [(m.text, m.kind) for m in conversation.messages] == [
        ("practice at 5", "text"), ("ok\nsee you", "text"), ("Photo", "media"),
        ("@Lily bring water", "text")]
    assert conversation.messages[3].mentions == (P("Lily"),)
    assert conversation.messages[3].time == dt.datetime(2025, 3, 3, 0, 1)


@pytest.mark.parametrize(("layout", "encoding"), [(KAKAO_ANDROID_KO, "utf-8"),
                                                  (KAKAO_ANDROID_KO, "cp949"),
                                                  (KAKAO_IOS_KO, "utf-8")])
def test_kakao_mobile_korean(tmp_path: Path, layout: str, encoding: str) -> None:
    conversation = _one(_write(tmp_path, "Talk.txt", layout, encoding))
    messages = conversation.messages
    assert len(_texts(conversation)) == 2 and len(messages) == 3
    assert messages[1].text in ("그냥\n누워있어", "누구세요\n진짜 누구")  # no notice glued on
    assert messages[2].kind == "media"
    assert len({m.speaker for m in messages}) == 2
    assert messages[0].time == dt.datetime(2025, 3, 3, 21, 15)


@pytest.mark.parametrize("layout", [KAKAO_MOBILE_EN, KAKAO_ANDROID_EN_TIME_FIRST])
def test_kakao_mobile_english_both_orders(tmp_path: Path, layout: str) -> None:
    conversation = _one(_write(tmp_path, "Talk.txt", layout))
    messages = conversation.messages
    assert messages[0].text == "pick you up at 3" and messages[0].speaker == P("Mom")
    assert messages[1].text in ("ok\n\nthanks", "ok\nthanks")
    assert messages[2].kind == "media"
    assert messages[0].time == dt.datetime(2025, 3, 3, 21, 15)
    assert P("Dad") not in {m.speaker for m in messages}  # joined and left, said nothing
    if layout is KAKAO_ANDROID_EN_TIME_FIRST:
        assert messages[3].text == "@Lily this message was long\nand kept"
        assert messages[3].mentions == (P("Lily"),)
    else:
        assert len(messages) == 3


def test_kakao_with_only_notices_is_an_error(tmp_path: Path) -> None:
    notices = "\n".join([*KAKAO_PC_KO.splitlines()[:5], "민지님이 들어왔습니다."]) + "\n"
    with pytest.raises(ChatImportError, match="no message could be read"):
        load(_write(tmp_path, "KakaoTalkChats.txt", notices), P)


def test_a_name_said_in_a_group_is_who_the_line_is_said_to(tmp_path: Path) -> None:
    from grooming.addressing import addressees

    room = ("[마루] [오후 9:00] 어서와요 콩이님\n[콩이] [오후 9:01] 안녕하세요\n"
            "[밤톨] [오후 9:01] 왔구나\n[콩이] [오후 9:01] 네 ㅎㅎ\n"
            "[크리퍼] [오후 9:02] 몇살이에요?\n"
            "[콩이] [오후 9:02] 13살이요\n[밤톨] [오후 9:03] ㅋㅋ\n"
            "[크리퍼] [오후 9:03] 콩이님 집 지어줄까요?\n"
            "[크리퍼] [오후 9:04] 밤톨님은 알아서 해요\n"
            "[마루] [오후 9:05] 마루에 누워있음\n")
    export = "콩이 님과 카카오톡 대화\n저장한 날짜 : 2025-03-04 00:00:00\n\n" \
             "--------------- 2025년 3월 3일 월요일 ---------------\n" + room
    conversation = _one(_write(tmp_path, "KakaoTalk_group.txt", export))
    said = {m.text: m.mentions for m in conversation.messages}
    assert said["콩이님 집 지어줄까요?"] == (P("콩이"),)
    assert said["밤톨님은 알아서 해요"] == (P("밤톨"),)
    assert said["마루에 누워있음"] == ()  # a name inside a word is not a name
    to = addressees(conversation.messages)
    # The child answers the one who asked her age, not her own previous addressee.
    assert to[5] == P("크리퍼")
