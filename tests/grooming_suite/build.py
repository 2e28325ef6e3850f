"""The labelled grooming suite: conversations the project wrote, in Korean and English.

Grooming conversations follow the stages in varying order and subsets, with the child's
replies; hard negatives carry the same surface cues in innocent settings: a parent and child,
a teacher and pupil, teenage peers, adults sexting each other, gaming banter, adult friends.
Every line the suspect writes is labelled with its stages.

Each phrase pool is split in two: even-numbered phrasings build the `train` part (the
classifier learns from it), odd-numbered ones the `eval` part (the scores are measured on it),
so the evaluation reads wordings the classifier never saw. This measures capability on text
the project wrote, not accuracy on real chats.

    python tests/grooming_suite/build.py    # writes train.jsonl and eval.jsonl beside it
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

# --- what a suspect says, by stage --------------------------------------------------------
SUSPECT = {
    "ko": {
        "age_probe": ["너 몇 살이야?", "몇 학년이야?", "학교 어디 다녀?", "혹시 중학생이야?",
                      "나이가 어떻게 돼?", "몇년생이야?", "무슨 학교 다녀?", "생일이 언제야? 몇 살 되는 거야"],
        "flattery": ["너 진짜 예쁘다", "나이보다 되게 성숙하다", "너는 다른 애들이랑 달라",
                     "너만큼 나 이해해주는 사람 없어", "완전 귀엽네 ㅎㅎ", "너는 특별해",
                     "사진 보니까 너무 이쁘더라", "나만 믿어 내가 다 알아서 해줄게"],
        "alone": ["지금 집에 혼자 있어?", "부모님 언제 오셔?", "엄마 몇 시에 들어오셔?",
                  "집에 아무도 없어?", "방문 잠그고 얘기하자", "아빠 주무셔?",
                  "혼자 있으면 전화해도 돼?", "식구들 다 자?"],
        "gifts": ["용돈 좀 줄까?", "기프티콘 보내줄게", "문상 사줄게 ㅎㅎ", "게임머니 충전해줄게",
                  "갖고 싶은 거 있으면 사줄게", "스폰해줄까?", "알바 해볼래? 돈 많이 줄게",
                  "선물 보내줄게 주소만 알려줘"],
        "secrecy": ["이건 우리만의 비밀이야", "엄마한테 말하지 마", "대화 다 지워줘",
                    "아무한테도 얘기하면 안 돼", "친구들한테 말하면 큰일나", "비밀 지켜줄 수 있지?",
                    "부모님한테는 얘기하지 마", "들키면 안 되니까 삭제해"],
        "platform_move": ["라인 아이디 있어?", "텔레그램 깔 수 있어?", "여기 말고 갠톡하자",
                          "디코 아이디 알려줘", "번호 좀 알려줘", "다른 앱으로 얘기하자",
                          "오픈채팅 말고 텔레로 와", "스냅챗 해?"],
        "media_request": ["사진 보내줘", "셀카 한 장만", "영통 할래?", "얼굴 보여줘",
                          "캠 켜봐", "전신 사진 보내봐", "지금 찍어서 보내줘", "페톡 가능해?"],
        "sexual": ["속옷 무슨 색이야?", "야한 얘기 해볼까", "가슴 사진 보내줘", "벗은 거 보고 싶다",
                   "키스해본 적 있어?", "몸매 좋겠다", "첫경험 해봤어?", "만져주고 싶다"],
        "meeting": ["토요일에 만나자", "내일 학교 끝나고 볼래?", "어디 살아? 데리러 갈게",
                    "주말에 만날래? 맛있는 거 사줄게", "집 앞으로 갈게", "우리 한번 만나볼래?",
                    "차로 데리러 갈게", "방과후에 시간 돼?"],
        "place": ["3시에 역 앞에서 보자", "공원 놀이터에서 기다릴게", "7시에 카페에서 보자",
                  "편의점 앞으로 나와", "2시에 ○○역 2번 출구"],
    },
    "en": {
        "age_probe": ["how old are you?", "what grade are you in?", "what school do you go to?",
                      "asl?", "are you in middle school?", "how old r u", "which school is that",
                      "when is your bday? how old will you be"],
        "flattery": ["you are so pretty", "you're so mature for your age", "you're not like the other girls",
                     "you are special to me", "nobody understands you like i do", "ur so cute",
                     "you can tell me anything", "trust me, i'll take care of you"],
        "alone": ["are you home alone?", "when do your parents get back?", "is your mom home?",
                  "anyone else home right now?", "lock your door ok", "are your parents asleep?",
                  "are you by yourself?", "is your dad at work?"],
        "gifts": ["i can buy you that phone", "want a gift card?", "i'll send you some robux",
                  "i can send you money on cashapp", "i'll get you a new game", "let me be your sponsor",
                  "i'll pay you for it", "need some allowance? i got you"],
        "secrecy": ["this is our secret ok", "don't tell your mom", "delete the chat after",
                    "keep this between us", "nobody needs to know", "dont tell anyone about me",
                    "you can't tell your friends", "delete these messages ok"],
        "platform_move": ["add me on snapchat", "do you have telegram?", "let's move to kik",
                          "what's your number?", "dm me on discord", "text me at this number",
                          "add me on sc", "let's talk on whatsapp instead"],
        "media_request": ["send me a pic", "send a selfie", "can we video call?", "turn on your camera",
                          "facetime me", "show me your outfit", "send me a photo of you", "what are you wearing?"],
        "sexual": ["have you ever kissed anyone?", "send nudes", "you look sexy", "what color is your bra",
                   "are you a virgin?", "i want to touch you", "take off your shirt", "you turn me on"],
        "meeting": ["let's meet up saturday", "i can pick you up after school", "where do you live?",
                    "want to hang out this weekend?", "come over to my place", "let's meet in real life",
                    "i'll drive you in my car", "can you sneak out tonight?"],
        "place": ["meet me at the park at 4pm", "i'll be at the mall at 3", "at the station tomorrow at 5",
                  "see you at the gas station at 8", "at the library after school"],
    },
}

CHILD = {
    "ko": {
        "minor": ["나 중2야", "저 15살이에요", "중학생이에요", "고1인데요", "학원 끝나고 집 가는 중",
                  "숙제 해야 돼ㅠㅠ", "엄마가 폰 못하게 해", "내일 수행평가 있어"],
        "reply": ["ㅇㅇ", "응", "ㅋㅋㅋ 몰라", "아 진짜요?", "음..", "네", "ㅎㅎ 고마워요", "왜요?",
                  "그냥 있어요", "ㄴㄴ", "좀 무서운데", "알았어요"],
    },
    "en": {
        "minor": ["i'm 13", "i'm in 8th grade", "im 14 lol", "i have homework tho",
                  "my mom says i cant", "middle school", "i'm 12 years old", "i have a curfew"],
        "reply": ["ok", "lol", "idk", "yeah", "why?", "haha thanks", "k", "maybe", "i guess",
                  "no", "thats kinda weird", "sure"],
    },
}
FILLER = {
    "ko": ["뭐해?", "밥 먹었어?", "오늘 날씨 좋다", "ㅋㅋㅋㅋ", "요즘 무슨 노래 들어?", "그 게임 해봤어?",
           "피곤하다", "주말에 뭐 했어?", "웹툰 뭐 봐?", "아 배고파"],
    "en": ["wyd", "did you eat?", "nice weather today", "lol", "what music do you like?",
           "have you played that game?", "so tired", "what did you do this weekend?",
           "what shows do you watch?", "im hungry"],
}
STAGE_ORDER = ["age_probe", "flattery", "alone", "gifts", "platform_move", "secrecy",
               "media_request", "sexual", "meeting"]

# --- hard negatives -----------------------------------------------------------------------
# Each is a script of (speaker, text) pools; "A" is the one whose cues could look like
# grooming, "B" the other.
NEGATIVES = {
    "parent_child": {
        "ko": [("B", ["엄마 나 학원 끝났어", "엄마 오늘 늦어?", "아빠 나 집 도착", "엄마 숙제 다 했어"]),
               ("A", ["지금 집에 혼자 있어?", "집에 아무도 없어?", "문 잠그고 있어"]),
               ("B", ["응 혼자 있어", "ㅇㅇ", "응 엄마"]),
               ("A", ["아빠한테는 비밀이야, 생일 선물 사놨어", "동생한테 말하지 마 깜짝 선물이야"]),
               ("A", ["숙제 사진 찍어서 보내줘", "가정통신문 사진 보내줄래?"]),
               ("A", ["6시에 학원 앞으로 데리러 갈게", "내일 3시에 병원 앞에서 만나"]),
               ("B", ["알았어 엄마 사랑해", "응 고마워 아빠", "엄마 최고"])],
        "en": [("B", ["mom i'm done with practice", "dad can you get me?", "mom im home", "mom i finished my homework"]),
               ("A", ["are you home alone?", "is anyone else home?", "lock the door ok"]),
               ("B", ["yes mom", "yeah just me", "ok dad"]),
               ("A", ["don't tell your dad, it's his birthday surprise", "keep it secret from your sister, it's a gift"]),
               ("A", ["send me a photo of the permission slip", "take a picture of your report card"]),
               ("A", ["i'll pick you up at 5 at the school gate", "meet me at the dentist at 3 tomorrow"]),
               ("B", ["thanks mom love you", "ok dad", "love you mom"])],
    },
    "teacher": {
        "ko": [("B", ["선생님 질문 있어요", "선생님 과제 언제까지예요?", "선생님 안녕하세요"]),
               ("A", ["몇 학년 몇 반이지?", "학교 끝나고 교무실로 와", "수행평가 사진 찍어서 올려"]),
               ("B", ["2학년 3반이요", "네 선생님", "넵"]),
               ("A", ["내일 9시에 교실에서 보자", "숙제는 금요일까지야"]),
               ("B", ["감사합니다 선생님", "네 알겠습니다"])],
        "en": [("B", ["teacher when is the essay due?", "coach, is practice on?", "hi teacher"]),
               ("A", ["what grade are you in again?", "come to my office after school", "send me a photo of your worksheet"]),
               ("B", ["7th grade", "ok coach", "thanks teacher"]),
               ("A", ["see you in class at 9", "the quiz is on friday"]),
               ("B", ["thank you teacher", "ok, thanks coach"])],
    },
    "teen_peers": {
        "ko": [("A", ["나 중2인데 너는?", "학원 끝났어?", "숙제 했냐"]),
               ("B", ["나도 중2 ㅋㅋ", "ㅇㅇ 방금 끝남", "수행평가 망함"]),
               ("A", ["새로 산 옷 사진 보내봐 ㅋㅋ", "셀카 보내봐 머리 자른 거"]),
               ("B", ["ㅋㅋ 잠만", "싫어 ㅋㅋ"]),
               ("A", ["토요일에 피시방 ㄱ?", "주말에 만나서 놀자 ㅋㅋ"]),
               ("A", ["비밀인데 나 걔 좋아해", "이건 비밀이야 ㅋㅋ 아무한테도 말하지 마"]),
               ("B", ["헐 대박 ㅋㅋ", "ㅇㅋ 비밀"])],
        "en": [("A", ["im in 8th grade too lol", "did u finish the homework", "my mom says i have a curfew"]),
               ("B", ["same lol", "nope lol", "i'm 13 too"]),
               ("A", ["send a pic of ur new shoes", "send me a selfie of the haircut lol"]),
               ("B", ["lol wait", "no way lol"]),
               ("A", ["wanna hang out at the mall saturday?", "lets meet at the park after school"]),
               ("A", ["ok this is a secret but i like him", "dont tell anyone but i failed the test"]),
               ("B", ["omg lol", "ok my lips are sealed"])],
    },
    "adults_sexting": {
        "ko": [("A", ["오늘 회사 끝나고 뭐해?", "퇴근했어?", "와이프 출장 갔어"]),
               ("B", ["야근 중이야", "이제 퇴근", "나 오늘 회식"]),
               ("A", ["너 몸매 진짜 좋더라", "야한 사진 보내줘", "속옷 무슨 색이야?"]),
               ("B", ["ㅋㅋ 변태", "이따 보내줄게", "비밀"]),
               ("A", ["토요일에 호텔에서 보자", "8시에 역 앞에서 만나"]),
               ("B", ["좋아 자기야", "ㅇㅋ"])],
        "en": [("A", ["how was work?", "are you off yet?", "my husband is away this week"]),
               ("B", ["long day at the office", "just got off", "at a work dinner"]),
               ("A", ["you look so sexy in that dress", "send me something naughty", "what are you wearing?"]),
               ("B", ["later babe", "you're bad lol", "maybe tonight"]),
               ("A", ["meet me at the hotel at 9", "saturday at my place?"]),
               ("B", ["can't wait", "ok babe"])],
    },
    "gaming_banter": {
        "ko": [("A", ["야 너 몇 살이냐 ㅋㅋ 초딩이지?", "ㅋㅋ 잼민이네", "님 몇 살임"]),
               ("B", ["아니거든 ㅋㅋ", "고딩임", "알 바 없음"]),
               ("A", ["디코 아이디 줘 같이 듀오 하자", "디코로 와 보이스 하자"]),
               ("A", ["죽여버린다 ㅋㅋ", "다음 판 캐리해줄게", "너 진짜 못한다 ㅋㅋ"]),
               ("B", ["ㅋㅋ 닥쳐", "ㄱㄱ", "ㅇㅋ"])],
        "en": [("A", ["how old are you lol, 12?", "ur such a kid lol", "what are you, 10?"]),
               ("B", ["shut up lol", "im 14 whatever", "older than you"]),
               ("A", ["add me on discord we can duo", "dm me on discord for the next match"]),
               ("A", ["i'm gonna destroy you", "gg ez", "you're trash lol"]),
               ("B", ["lol ok", "gg", "bet"])],
    },
    "adult_friends": {
        "ko": [("A", ["여행 사진 보낼래?", "제주도 사진 보내줘", "애기 사진 좀 보여줘"]),
               ("B", ["ㅇㅇ 잠깐만", "응 보내줄게", "우리 애 많이 컸어"]),
               ("A", ["주말에 만날래?", "토요일 7시에 강남역 어때?"]),
               ("B", ["좋아 거기서 봐", "ㅇㅋ"]),
               ("A", ["회사 일 때문에 요즘 힘들다", "비밀인데 나 이직해"]),
               ("B", ["고생이다", "헐 축하해"])],
        "en": [("A", ["send me the pics from the trip", "can you send a photo of the baby?", "show me the new apartment"]),
               ("B", ["sure one sec", "here you go", "she's getting so big"]),
               ("A", ["want to meet for drinks saturday?", "lunch tomorrow at 12?"]),
               ("B", ["sounds good", "see you there"]),
               ("A", ["work has been crazy", "keep it between us but i'm quitting"]),
               ("B", ["good for you", "my lips are sealed"])],
    },
}


def _half(pool: list[str], part: str) -> list[str]:
    chosen = pool[0::2] if part == "train" else pool[1::2]
    return chosen or pool


def grooming_conversation(lang: str, part: str, rng: random.Random, number: int) -> dict:
    stages = [s for s in STAGE_ORDER if rng.random() < 0.7]
    if "age_probe" not in stages and rng.random() < 0.7:
        stages.insert(0, "age_probe")
    risky = {"secrecy", "media_request", "sexual", "meeting", "gifts", "alone"}
    if not risky & set(stages):
        stages.append(rng.choice(sorted(risky)))
    if len(stages) < 3:
        stages += [s for s in ("secrecy", "media_request") if s not in stages]
    stages.sort(key=lambda s: STAGE_ORDER.index(s) + rng.uniform(-1.5, 1.5))
    messages: list[dict] = []

    def say(speaker: str, text: str, labels: list[str] | None = None) -> None:
        messages.append({"speaker": speaker, "text": text, "stages": labels or []})

    for _ in range(rng.randint(1, 3)):
        say(rng.choice("AB"), rng.choice(FILLER[lang]))
    minor_said = False
    for stage in stages:
        say("A", rng.choice(_half(SUSPECT[lang][stage], part)), [stage])
        if stage == "meeting" and rng.random() < 0.8:
            say("A", rng.choice(_half(SUSPECT[lang]["place"], part)), ["meeting"])
        if stage == "age_probe" or (not minor_said and rng.random() < 0.35):
            say("B", rng.choice(_half(CHILD[lang]["minor"], part)))
            minor_said = True
        else:
            say("B", rng.choice(CHILD[lang]["reply"]))
        if rng.random() < 0.3:
            say(rng.choice("AB"), rng.choice(FILLER[lang]))
    if not minor_said:
        messages.insert(rng.randint(1, len(messages)), {
            "speaker": "B", "text": rng.choice(_half(CHILD[lang]["minor"], part)), "stages": []})
    urgent = "meeting" in stages and any(
        m["stages"] == ["meeting"] and m["text"] in SUSPECT[lang]["place"] for m in messages)
    return {"id": f"{part}-groom-{lang}-{number}", "language": lang, "kind": "grooming",
            "expected": "urgent" if urgent else "review", "messages": messages}


def negative_conversation(kind: str, lang: str, part: str, rng: random.Random,
                          number: int) -> dict:
    messages = []
    for _ in range(rng.randint(0, 2)):
        messages.append({"speaker": rng.choice("AB"), "text": rng.choice(FILLER[lang]),
                         "stages": []})
    for speaker, pool in NEGATIVES[kind][lang]:
        messages.append({"speaker": speaker, "text": rng.choice(_half(pool, part)),
                         "stages": []})
        if rng.random() < 0.25:
            messages.append({"speaker": rng.choice("AB"), "text": rng.choice(FILLER[lang]),
                             "stages": []})
    return {"id": f"{part}-{kind}-{lang}-{number}", "language": lang, "kind": kind,
            "expected": "none", "messages": messages}


def build(part: str, seed: int, grooming: int = 40, negatives: int = 12) -> list[dict]:
    rng = random.Random(seed)
    conversations = []
    start = dt.datetime(2026, 10, 1, 20, 0)
    for lang in ("ko", "en"):
        for n in range(grooming):
            conversations.append(grooming_conversation(lang, part, rng, n))
        for kind in NEGATIVES:
            for n in range(negatives):
                conversations.append(negative_conversation(kind, lang, part, rng, n))
    for conversation in conversations:
        when = start + dt.timedelta(days=rng.randint(0, 30))
        for message in conversation["messages"]:
            when += dt.timedelta(seconds=rng.randint(20, 600))
            message["time"] = when.isoformat()
    return conversations


def load(part: str) -> list[dict]:
    with (HERE / f"{part}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def main() -> None:
    for part, seed in (("train", 1), ("eval", 2)):
        with (HERE / f"{part}.jsonl").open("w", encoding="utf-8") as handle:
            for conversation in build(part, seed):
                handle.write(json.dumps(conversation, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
