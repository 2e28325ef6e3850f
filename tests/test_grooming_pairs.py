"""Who says what to whom: pairs in group rooms, minor evidence, reported speech."""

from __future__ import annotations

from grooming.addressing import addressees
from grooming.cues import rule_cues
from grooming.normalise import normalise
from grooming.people import People
from grooming.scan import default_scorer
from grooming.schema import Conversation
from grooming.speech import reported


def _chat(lines: list[tuple[str, str]]) -> Conversation:
    conversation = Conversation("c", "hand-written")
    for speaker, text in lines:
        conversation.add(None, speaker, text)
    return conversation


def test_in_a_group_the_addressee_follows_turns_and_answers() -> None:
    chat = _chat([("kid", "anyone doing the quest"), ("adult", "hey how old are you"),
                  ("other", "lol same"), ("kid", "13"), ("adult", "are you home alone?"),
                  ("adult", "dont tell anyone")])
    to = addressees(chat.messages)
    assert to[1] == "kid"  # turn-taking
    assert to[3] == "adult"  # answering who spoke to her, not the last writer
    assert to[4] == "kid" and to[5] == "kid"  # answering, then carrying on


def test_reported_speech_is_recognised_and_apostrophes_are_not_quotes() -> None:
    def said(text: str) -> bool:
        return reported(normalise(text), text)

    assert said('he told my son "send me a pic and I will give you robux"')
    assert said("어떤 남자가 사진 보내주면 문상 준다고 했대요")
    assert said("for example, keep this our secret")
    assert not said("don't tell anyone it's our secret")
    assert not said("사진 보내줘")


def test_a_claimed_age_is_outweighed_by_adult_slips() -> None:
    people = People()
    for i, text in enumerate(["i am 14 lol", "after my shift i can drive us",
                              "my landlord is annoying"]):
        people.read(i, "fake", "kid", normalise(text), rule_cues(normalise(text)), False)
    assert people.evidence("fake").probability < 0.12  # below the prior: the claim is withdrawn
    people.read(3, "kid", "fake", normalise("15"), rule_cues(normalise("15")), True)
    assert people.evidence("kid").probability > 0.7


def test_the_same_stages_alert_for_a_child_and_stay_quiet_when_quoted() -> None:
    scorer = default_scorer()  # rules, classifier and line model, as a scan reads
    grooming = _chat([("a", "how old are you?"), ("b", "14"), ("a", "are you home alone?"),
                      ("a", "send me a picture of you"), ("a", "don't tell your mom")])
    states = scorer.score(grooming)
    assert states["a"].tier != "none" and states["a"].target == "b"
    assert states["a"].minor_evidence is not None and states["a"].minor_evidence.lines == [1]
    warning = _chat([("mum", 'he asked "how old are you?" and she said 14'),
                     ("dad", "omg"),
                     ("mum", 'then he said "are you home alone?"'),
                     ("mum", 'and "send me a picture of you", "don\'t tell your mom"')])
    quiet = scorer.score(warning)
    assert {s.tier for s in quiet.values()} == {"none"}
    assert quiet["mum"].reported_speech >= 2


def test_the_verdict_is_the_pair_model_and_weighs_who_the_target_is() -> None:
    from grooming import combiner

    model = combiner.load()
    assert len(model.coef) == len(combiner.FEATURES) and 0.5 <= model.threshold < 1.0
    scorer = default_scorer()
    stages = [("a", "are you home alone?"), ("a", "send me a picture of you"),
              ("a", "don't tell anyone about this")]
    child = scorer.score(_chat([("b", "i have so much homework and my mom takes my phone at 9"),
                                ("b", "im in 7th grade"), *stages]))["a"]
    adult = scorer.score(_chat([("b", "long shift today, my boss kept me late"),
                                ("b", "i need a beer after work"), *stages]))["a"]
    # The same words to a child and to an adult: the model's probability, not a word count.
    assert child.score > adult.score
    assert child.features[combiner.FEATURES.index("target_minor")] > 0.5
    assert adult.features[combiner.FEATURES.index("target_minor")] < 0.12
    assert child.score == round(model.probability(child.features), 3)


def test_the_classifier_reads_an_implied_age_no_rule_lists() -> None:
    from grooming.classifier import StageClassifier

    found = StageClassifier.load().classify(
        [normalise("cant stay up, my mom takes my ipad at 9 on school nights")])
    assert "minor" in {c.label for c in found[0]}


def test_isolation_and_threat_are_stages() -> None:
    def labels(text: str) -> set[str]:
        return {c.label for c in rule_cues(normalise(text))}

    assert "isolation" in labels("your mom wouldnt get it, only i understand you")
    assert "threat" in labels("send it or i'll post this to all your friends")
    assert "threat" in labels("안 보내면 친구들한테 다 뿌린다")
    assert "isolation" in labels("엄마는 너 이해 못해")


def test_the_line_model_reads_a_groomers_way_of_writing() -> None:
    from grooming.lines import LineModel

    model = LineModel.load()
    groomer, friend = model.probabilities([
        normalise("good girl. this stays between us ok? ill send u robux after").text,
        normalise("did you finish the math homework? mr lee said its due friday").text])
    assert groomer > 0.5 > friend
    chat = _chat([("a", "ur so mature for ur age"), ("b", "lol thx"),
                  ("a", "this stays between us ok? good girl")])
    state = default_scorer().score(chat)["a"]
    assert len(state.lines) == 2 and max(state.lines) > 0.5
