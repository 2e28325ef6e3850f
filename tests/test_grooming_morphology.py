"""The sexual rule reads Korean words as morphemes: the words it lists no longer fire inside
innocent words (보지마, 피해자지원센터, 같이 자전거) or in their innocent senses (가슴이 아파,
벗어나다, 옷을 빨아), and still fire where they are meant."""

from __future__ import annotations

import sys

import pytest

from grooming import morphology
from grooming.cues import rule_cues
from grooming.normalise import normalise


def labels(text: str) -> set[str]:
    return {c.label for c in rule_cues(normalise(text))}


INNOCENT = [
    "가슴이 너무 아파",  # heartache
    "가슴이 설레 ㅎㅎ",
    "가슴 답답해 시험 망함",
    "가슴에 손 얹고 말해봐",
    "여기서 벗어나고 싶어",  # escape
    "신발 벗고 들어와",
    "마스크 벗어도 돼?",
    "그거 보지마",  # the verb 보다
    "보지도 않았어 그 영화",
    "그냥 보지 뭐",
    "일찍 자지마",  # the verb 자다
    "자지도 않고 게임했어",
    "나는 남자지만 괜찮아",
    "신고는 112, 디지털성범죄피해자지원센터 02-735-8994",
    "빨래 했어",
    "교복 빨아놨어",
    "사탕 빨아먹어",
    "같이 자전거 타자",
    "같이 자료 찾아보자",
    "울집에서 다같이 자고가",
    "의자 위에 놨어",
    "의자위에 놨어",
    "자위대 뉴스 봤어?",
    "공부 해야한거 다 했어",
    "이성관계 고민 상담",
    "브라질 가고싶다",
    "브라우저 껐어",
    "밀키스 마실래",
    "개인정보 노출 조심해",
    "얼굴 노출 하지마",
    "잠자리 잡았어",
    "잠자리에 들었어",
    "흥분하지마 ㅋㅋ",
    "폰 만지지마",
    "처녀자리야 나",
]

MEANT = [
    "야한 사진 보내줘",
    "야한 얘기 해볼까",
    "야짤 보내",
    "속옷 무슨 색이야?",
    "가슴 사진 보내줘",
    "가슴 크다",
    "키스해본 적 있어?",
    "벗은 거 보고 싶다",
    "옷 벗어봐",
    "만져주고 싶다",
    "보지 보여줘",
    "ㅂㅈ 보여줘",
    "내 자지 보여줄까",
    "자지 빨아줘",
    "나랑 같이 자자",
    "처녀야?",
    "흥분돼",
    "노출 사진 보내",
    "성관계 해봤어?",
    "자위 해봤어?",
    "ㅈㅇ 해봤어?",
    "브라 벗어",
    "잠자리 할래?",
    "첫경험 해봤어?",
    "너 몸매 진짜 좋더라",
]


@pytest.mark.parametrize("text", INNOCENT)
def test_innocent_words_no_longer_read_as_sexual(text: str) -> None:
    assert "sexual" not in labels(text)


@pytest.mark.parametrize("text", MEANT)
def test_sexual_words_still_read_as_sexual(text: str) -> None:
    assert "sexual" in labels(text)


def test_the_word_found_is_named() -> None:
    def terms(text: str) -> list[str]:
        return morphology.sexual_terms(morphology.morphemes(normalise(text).text))

    assert terms("자지 빨아줘") == ["자지", "빨다"]
    assert terms("브라 벗어") == ["브라", "벗다"]
    assert terms("가슴이 아파서 그래") == []
    assert terms("그거 보지마") == []


def test_other_rules_and_other_stages_are_unchanged() -> None:
    # The morphemes decide only the sexual words; a line with one of them keeps its other stages.
    assert labels("사진 보내줘 가슴이 아파") == {"media_request"}
    assert {"sexual", "media_request"} <= labels("가슴 사진 보내줘")
    assert "sexual" in labels("take off your shirt")


def test_a_message_is_analysed_once() -> None:
    text = normalise("가슴 보여줘 한번만").text
    assert morphology.morphemes(text) is morphology.morphemes(text)


def test_missing_kiwipiepy_is_an_error_not_a_silent_fallback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(morphology, "_analyser", None)
    monkeypatch.setitem(sys.modules, "kiwipiepy", None)  # import kiwipiepy raises ImportError
    morphology.morphemes.cache_clear()
    # English lines and Korean lines without a candidate word never need the analyser.
    assert "media_request" in labels("send me a pic")
    assert "age_probe" in labels("몇 살이야?")
    with pytest.raises(morphology.MorphologyUnavailable, match="kiwipiepy"):
        labels("그거 보지마")
    morphology.morphemes.cache_clear()
