"""Korean morphemes for the cue rules whose words hide inside innocent ones.

Korean rules read the text without spaces (`Normalised.compact`), so a word of the sexual rule
is found inside words that have nothing to do with it: 자지 in 피해자지원센터 and 남자지만,
보지 in 보지마 (the verb 보다), 자위 in 의자위에 (의자 위에), 같이자 in 같이자전거, 브라 in
브라질, 키스 in 밀키스, 야한거 in 해야한거, 성관계 in 이성관계; and some words are spelt the
same as innocent ones: 가슴이 아파 (heartache), 벗어나다 (escape), 옷을 빨아 (laundry),
신발 벗고 (shoes), 개인정보 노출 (privacy). `sexual_terms` reads such words as morphemes
(a lemma and its part of speech, from kiwipiepy's analysis of the text with its spaces) and
says which of them are meant sexually.

kiwipiepy is a declared dependency (its model ships as the `kiwipiepy_model` package, so it
runs offline). Its analyser takes about 1.5 s (load and first analysis) and some 330 MB, so it
is loaded once per process, and only at the first message whose text without spaces holds one
of these words (English chats and most Korean lines never load it); without its multi-word
dictionary, which loads three times slower, takes 190 MB more and changed no analysis these
rules read. A message is analysed once (the scorer and the classifier ask for the same lines),
in about 0.05 ms. If kiwipiepy is missing, the first such message raises
`MorphologyUnavailable`: falling back to substrings would bring the false hits back without
anyone noticing.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass


class MorphologyUnavailable(RuntimeError):
    """kiwipiepy (a dependency of Haechi) is not installed."""


@dataclass(frozen=True, slots=True)
class Morph:
    form: str  # the lemma for a verb or adjective stem (벗 of 벗어), else the surface form
    tag: str  # Sejong tag without kiwipiepy's irregular-conjugation suffix ("VV", not "VV-R")
    start: int
    end: int


_lock = threading.Lock()
_analyser = None


def _kiwi():
    global _analyser
    with _lock:
        if _analyser is None:
            try:
                from kiwipiepy import Kiwi
            except ImportError as exc:
                raise MorphologyUnavailable(
                    "Korean cue rules need kiwipiepy (a dependency of Haechi): install Haechi "
                    "again with `pip install -e .`, or `pip install kiwipiepy`") from exc
            _analyser = Kiwi(load_multi_dict=False)
        return _analyser


@functools.lru_cache(maxsize=8192)
def morphemes(text: str) -> tuple[Morph, ...]:
    """The morphemes of one (normalised) message, with its spaces."""
    kiwi = _kiwi()
    with _lock:
        tokens = kiwi.tokenize(text)
    return tuple(Morph(t.form, t.tag.split("-")[0], t.start, t.end) for t in tokens)


# --- what makes a word innocent --------------------------------------------------------------
# 가슴 with a feeling ("가슴이 아파", "가슴이 설레", "가슴 답답해") or the chest of a workout.
_HEART = {
    "아프", "아파하", "아픔", "설레", "뛰", "답답", "답답하", "먹먹", "먹먹하", "뭉클", "뭉클하",
    "찡", "찡하", "벅차", "벅차오르", "두근", "두근거리", "두근대", "철렁", "철렁하", "아리",
    "시리", "쓰리", "저리", "미어지", "찢어지", "무너지", "터지", "따뜻", "따뜻하", "따듯하",
    "뜨겁", "울렁", "울렁거리", "콩닥", "콩닥거리", "졸이", "조마조마", "떨리", "쿵쾅",
    "쿵쾅거리", "울리", "찔리", "뿌듯", "뿌듯하", "후련", "후련하", "시원", "시원하", "막히",
    "얹", "새기", "묻", "쓸어내리", "통증", "운동", "근육", "속", "깊이", "한편",
}
# Worn things taken off that are not clothes ("신발 벗고 들어와", "마스크 벗어도 돼").
_NOT_CLOTHES = {
    "신발", "신", "구두", "운동화", "슬리퍼", "양말", "모자", "안경", "선글라스", "썬글라스",
    "마스크", "외투", "코트", "패딩", "잠바", "점퍼", "겉", "겉옷", "장갑", "헬멧", "가면", "탈",
    "누명", "허물", "껍질", "껍데기", "이어폰", "헤드셋", "가방", "배낭", "목도리",
}
# Things handled ("폰 만지지마"), washed or sucked innocently ("옷 빨아놨어", "사탕 빨아먹어").
_HANDLED = {
    "폰", "핸드폰", "휴대폰", "스마트폰", "컴퓨터", "컴", "노트북", "태블릿", "패드", "키보드",
    "마우스", "리모컨", "게임기", "기계", "돈", "설정", "물건", "머리", "머리카락", "고양이",
    "강아지",
}
_WASHED_OR_SUCKED = {
    "옷", "빨래", "양말", "이불", "수건", "교복", "체육복", "운동화", "신발", "베개", "커튼",
    "사탕", "막대사탕", "빨대", "아이스크림", "젤리", "주스", "우유", "쭈쭈바", "손가락",
}
# 노출 of information, not of a body ("개인정보 노출", "얼굴 노출", "노출 콘텐츠 뉴스").
_EXPOSED_INFO = {
    "정보", "위치", "신상", "번호", "주소", "광고", "콘텐츠", "뉴스", "기사", "자외선", "햇빛",
    "햇볕", "얼굴", "실명", "이름", "계정", "학교", "사생활", "개인",
}
# 잠자리 the dragonfly, or going to bed ("잠자리 잡았어", "잠자리에 들었어", "잠자리 편해?").
_BEDTIME = {"잡", "날", "날아다니", "날개", "들", "눕", "편하", "불편하", "바뀌", "예민하", "준비"}
# What follows the verbs 보다/자다 + -지 ("보지마", "자지도 않고", "보지 그래", "자지?").
_AFTER_VERB_JI = {"말", "않", "못", "못하", "그러", "그렇", "뭐", "왜", "마", "좀"}


def _skip_to(ms: tuple[Morph, ...], i: int, step: int, tags: tuple[str, ...]) -> int:
    """The index of the morpheme next to ms[i] (step +1 or -1), past particles and the given
    tags; out of range when there is none."""
    j = i + step
    while 0 <= j < len(ms) and (ms[j].tag.startswith("J") or ms[j].tag in tags):
        j += step
    return j


def _skip(ms: tuple[Morph, ...], i: int, step: int, tags: tuple[str, ...]) -> Morph | None:
    j = _skip_to(ms, i, step, tags)
    return ms[j] if 0 <= j < len(ms) else None


def _noun_before(ms: tuple[Morph, ...], i: int, nouns: set[str]) -> bool:
    """One of `nouns` is the object or subject just before ms[i] (adverbs and particles between)."""
    before = _skip(ms, i, -1, ("MAG",))
    return before is not None and before.tag.startswith("N") and before.form in nouns


def _verb_ji(ms: tuple[Morph, ...], i: int, verb: str) -> bool:
    """ms[i] is `verb` + the ending -지 read as a noun: "보지 보여줘" (kiwipiepy often reads the
    noun as 보다 + -지), but not "보지마", "보지도 않아", "영화 보지?"."""
    if ms[i].form != verb or ms[i].tag not in ("VV", "VX") or i + 1 >= len(ms):
        return False
    ji = ms[i + 1]
    if ji.form != "지" or ji.tag not in ("EC", "EF") or ji.start != ms[i].end:
        return False
    after = ms[i + 2] if i + 2 < len(ms) else None
    return not (after is None or after.tag.startswith(("J", "S", "E"))
                or after.form in _AFTER_VERB_JI)


def sexual_terms(ms: tuple[Morph, ...]) -> list[str]:
    """The words of the sexual rule that these morphemes hold in a sexual sense."""
    found = []
    for i, m in enumerate(ms):
        noun, verb = m.tag.startswith("NN"), m.tag in ("VV", "VA", "VX")
        if m.form == "야하" and m.tag == "VA":
            found.append("야한")
        elif m.form in ("벗", "벗기") and verb and not _noun_before(ms, i, _NOT_CLOTHES):
            found.append("벗다")
        elif m.form == "브라" and noun:
            found.append("브라")
        elif m.form == "가슴" and noun:
            j = _skip_to(ms, i, +1, ("MAG",))
            if j < len(ms) and ms[j].form == "손":  # 가슴에 손 얹고 (hand on heart)
                j = _skip_to(ms, j, +1, ("MAG",))
            if j >= len(ms) or ms[j].form not in _HEART:
                found.append("가슴")
        elif m.form in ("자위", "키스", "처녀") and noun:
            found.append(m.form)
        elif m.form == "성관계" and noun:
            # kiwipiepy reads 이성관계 (relationships) as 이 + 성관계.
            if not (i and ms[i - 1].form == "이" and ms[i - 1].end == m.start):
                found.append("성관계")
        elif m.form == "만지" and verb and not _noun_before(ms, i, _HANDLED):
            found.append("만지다")
        elif m.form == "노출" and noun:
            near = ms[max(0, i - 3):i + 4]
            if not any(n.tag.startswith("NN") and n.form in _EXPOSED_INFO for n in near):
                found.append("노출")
        elif m.form == "흥분" and noun:
            # "흥분하지마" is "calm down".
            rest = [n.form for n in ms[i + 1:i + 4]]
            if rest[-2:] != ["지", "말"]:
                found.append("흥분")
        elif (m.form in ("보지", "보지털") and noun) or _verb_ji(ms, i, "보"):
            found.append("보지")
        elif (m.form == "자지" and noun) or _verb_ji(ms, i, "자"):
            found.append("자지")
        elif m.form == "빨" and m.tag == "VV":
            after = _skip(ms, i, +1, ("EC", "EF"))
            if not (_noun_before(ms, i, _WASHED_OR_SUCKED)
                    or (after is not None and after.form in ("먹", "들이"))):
                found.append("빨다")
        elif m.form == "같이" and m.tag in ("MAG", "JKB"):
            # Not a sleepover of many ("다같이 자고가", "모두 같이 자").
            after = _skip(ms, i, +1, ("MAG",))
            group = i and ms[i - 1].form in ("다", "모두", "다들", "전부")
            if after is not None and after.form == "자" and after.tag == "VV" and not group:
                found.append("같이 자다")
        elif m.form == "잠자리" and noun:
            after = _skip(ms, i, +1, ("MAG",))
            if after is None or after.form not in _BEDTIME:
                found.append("잠자리")
    return found
