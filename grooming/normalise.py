"""Chat text as the cue rules and the classifier read it, Korean and English.

Chat writing hides words from keyword lists without meaning to: stretched letters ("사진
보내줘어어어", "pleaseeee"), initial-consonant shorthand ("ㅇㅇ" for 응, "ㅅㄱ" for 수고),
slang and abbreviations ("영통" for a video call, "asl", "pic"), and spacing that comes and goes
("몇 살" / "몇살"). `normalise` undoes these and says which slang it read, for the alert's
explanation. Repeated characters are folded as soynlp's repeat_normalize folds them (a run of
four or more of one character becomes two), with its regular expression rather than its
package, whose import pulls in scikit-learn and SciPy and cost `haechi chats scan` a second.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# Initial-consonant shorthand, as whole tokens.
CHOSEONG = {
    "ㅇㅇ": "응", "ㄴㄴ": "아니", "ㅇㅋ": "오케이", "ㄱㅅ": "감사", "ㅈㅅ": "죄송", "ㅅㄱ": "수고",
    "ㅂㅂ": "바이", "ㅎㅇ": "하이", "ㄱㄱ": "고고", "ㅊㅋ": "축하", "ㅁㄹ": "몰라", "ㅇㄷ": "어디",
    "ㄹㅇ": "리얼", "ㅇㅈ": "인정", "ㅈㅂ": "제발", "ㅅㅅ": "섹스", "ㅂㅈ": "보지", "ㅈㅇ": "자위",
    "ㄷㅊ": "닥쳐", "ㅁㅊ": "미친", "ㅅㅂ": "씨발", "ㄲㅈ": "꺼져", "ㅍㅌ": "파티",
}
# Slang and abbreviations, Korean (matched inside words) and English (whole words).
KO_SLANG = {
    "영통": "영상통화", "페톡": "페이스톡", "갠톡": "개인톡", "개톡": "개인톡", "텔레": "텔레그램",
    "디코": "디스코드", "인스타": "인스타그램", "문상": "문화상품권", "기프티콘": "기프티콘",
    "야사": "야한사진", "야짤": "야한사진", "몸사": "몸사진", "셀피": "셀카", "중딩": "중학생",
    "고딩": "고등학생", "초딩": "초등학생", "샘": "선생님", "쌤": "선생님", "엄빠": "엄마아빠",
    "몇짤": "몇살", "멫살": "몇살", "ㅁㅊ": "미친",
}
EN_SLANG = {
    "u": "you", "ur": "your", "r": "are", "ya": "you", "y": "why", "pic": "picture",
    "pics": "pictures", "pix": "pictures", "selfie": "selfie", "nudes": "nude pictures",
    "sc": "snapchat", "snap": "snapchat", "tg": "telegram", "ig": "instagram",
    "insta": "instagram", "wyd": "what are you doing", "hmu": "hit me up",
    "asl": "age sex location", "ft": "facetime", "irl": "in real life", "rn": "right now",
    "yo": "years old", "yrs": "years", "bday": "birthday", "pls": "please", "plz": "please",
    "gf": "girlfriend", "bf": "boyfriend", "im": "i am", "i'm": "i am", "ima": "i am going to",
    "wanna": "want to", "gonna": "going to", "dont": "do not", "cant": "can not",
    "wont": "will not", "hbu": "how about you", "wbu": "what about you", "k": "ok",
    "mom's": "mom is", "cuz": "because", "bc": "because", "thx": "thanks", "ty": "thank you",
    "nvm": "never mind", "tho": "though", "cam": "camera", "vid": "video", "dm": "message",
}
# NFKC turns the compatibility jamo people type (ㅇ, U+3147) into conjoining ones (U+110B);
# turn them back so shorthand stays recognisable.
_JAMO_BACK = str.maketrans({chr(0x1100 + n): c
                            for n, c in enumerate("ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ")})
# soynlp.normalizer's repeatchars_pattern, used as repeat_normalize(text, num_repeats=2) uses it.
_REPEATED = re.compile(r"(\w)\1{3,}")
_SPACES = re.compile(r"\s+")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_LATIN_RUN = re.compile(r"([a-z])\1{2,}")
_TOKEN = re.compile(r"[a-z']+|[^a-z']+")
_AGE_YO = re.compile(r"\b(\d{1,2})\s?(?:yo|y/o|yrs?)\b")


@dataclass(frozen=True)
class Normalised:
    text: str  # normalised, spaces kept (English rules, the classifier)
    compact: str  # normalised without spaces (Korean rules: spacing varies)
    slang: tuple[str, ...] = field(default=())  # "영통 → 영상통화", for explanations


def normalise(text: str) -> Normalised:
    text = unicodedata.normalize("NFKC", text).translate(_JAMO_BACK).casefold().strip()
    notes: list[str] = []
    if _HANGUL.search(text):
        text = _SPACES.sub(" ", _REPEATED.sub(r"\1\1", text)).strip()
        words = []
        for word in text.split():
            bare = word.strip("?!.~,")
            if bare in CHOSEONG:
                notes.append(f"{bare} → {CHOSEONG[bare]}")
                word = word.replace(bare, CHOSEONG[bare])
            words.append(word)
        text = " ".join(words)
        for slang, meaning in KO_SLANG.items():
            if slang in text and meaning not in text:
                notes.append(f"{slang} → {meaning}")
                text = text.replace(slang, meaning)
    text = _LATIN_RUN.sub(r"\1\1", text)
    text = _AGE_YO.sub(r"\1 years old", text)
    out = []
    for token in _TOKEN.findall(text):
        meaning = EN_SLANG.get(token)
        if meaning is None and token in ("picz", "vidz"):
            meaning = EN_SLANG.get(token[:-1] + "s")
        if meaning is not None and meaning != token:
            notes.append(f"{token} → {meaning}")
            token = meaning
        out.append(token)
    text = "".join(out)
    return Normalised(text, re.sub(r"\s+", "", text), tuple(dict.fromkeys(notes)))
