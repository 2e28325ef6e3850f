"""How likely each person in a chat is a minor: evidence, not a gate.

Ages in real chats are rarely stated; they are implied (school, a cram school, homework, a
curfew, a parent who takes the phone at nine), answered with a bare number, claimed falsely (an
adult posing as a fourteen-year-old who later mentions his shift or his car), or said of
someone else ("is your school out yet?"). So each person gets log-odds of being a minor that
every such line moves, and the line is credited to the person it describes:

- a self-disclosure is evidence about the writer: "I'm in 8th grade", "나 학원 끝났어";
- a remark or question in the second person is evidence about the addressee, and weaker (the
  writer may be guessing, or probing): "your homework done?", "너 중학생이지?";
- a bare age or grade given in answer to an age question is strong evidence about the writer,
  an adult age in answer is strong evidence against;
- adult life (work shifts, a car, a wife, rent, the army) is evidence against, about the
  writer, and it outweighs an earlier claimed age: a claim is a line, a slip is a fact;
- addressing someone as mum, dad or teacher is evidence that the addressee is an adult and,
  weaker, that the writer is a child.

`MinorEvidence.probability` turns the log-odds into 0..1 (logistic), from PRIOR: with nothing
said, a person in a monitored chat is taken as probably an adult. The weights are set by hand
and tuned on the dev split (`testkit/grooming_dev/`), never on the frozen eval.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from grooming.cues import MINOR_STATED, Cue
from grooming.normalise import Normalised

PRIOR = -2.0  # p = 0.12 with no evidence
EXPLICIT_SELF = 3.0  # "I'm 13", "중2", a bare "14" after "how old are you?"
CONTEXT_SELF = 1.2  # school, homework, a curfew, parents' rules, of oneself
ABOUT_OTHER = 0.8  # the same said of the addressee ("your school", "너 중학생이지?")
ADULT_SELF = -2.0  # a shift, a car, a wife, rent: the writer is an adult
ADULT_ANSWER = -3.0  # "23" after "how old are you?"
ADDRESSED_AS_PARENT = -2.5  # "thanks mom": the addressee is an adult
ADDRESSING_PARENT = 0.8  # ... and the writer, probably, a child
# A kind of evidence counts at most this many times per person: ten mentions of homework are
# not ten times the evidence of one.
MAX_PER_KIND = 2

_SECOND_PERSON = re.compile(r"\b(you|your|yours|you are|are you)\b")
_SECOND_PERSON_KO = re.compile(r"^(너|니|네|넌|너는|너네|너희|님|니네)|(너|니가|네가|넌|너네|"
                               r"너희|니네)")
_FIRST_PERSON = re.compile(r"\b(i|my|me|mine|i am)\b")
_FIRST_PERSON_KO = re.compile(r"^(나|저|난|전|내|제)(는|도|가|이)?|우리(엄마|아빠|학교|반|학원)")
# The addressee's own things: a possessive second person, or 너/너네 right before a noun of
# school or home.
_YOUR = re.compile(r"\b(your|yours)\b|(너네|너희|니네|네|니|너)\s?(학교|학원|반|담임|선생님|"
                   r"엄마|아빠|부모님|집|방|숙제|시험|수행|급식|교복|폰)")
# A question without its question mark, as chats write them.
_ASKING = re.compile(r"(how|what|when|where|which|did|do|does|are|is|was|were|have|has|can|"
                     r"will|would)\b")
_GENERAL = re.compile(r"(중딩|초딩|고딩|학생|애)들|\b(kids|teens|teenagers|students|children)\b")
_QUESTION_KO = re.compile(r"(니|냐|나요|세요|어요|지|야|음|임|어|니까)\??$")
_BARE_AGE = re.compile(r"^(?:i am |난 |나 |저 |전 )?(\d{1,2})(?: years old|살|세|yo)?[.!?~ㅋㅎ ]*$")
_BARE_GRADE = re.compile(r"^(?:나 |저 |난 )?(?:중|고|초)[1-6](?:이야|이요|임|요)?[.!?~ㅋㅎ]*$|"
                         r"^(?:(?:6|7|8|9|10|11|12)th)(?: grade)?[.!?]*$")


@dataclass
class MinorEvidence:
    """One person's evidence of being a minor: log-odds and the lines it rests on."""

    logit: float = PRIOR
    lines: list[int] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, weight: float, line: int) -> None:
        if self.kinds.get(kind, 0) >= MAX_PER_KIND:
            return
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.logit += weight
        if line not in self.lines:
            self.lines.append(line)

    @property
    def probability(self) -> float:
        return 1.0 / (1.0 + math.exp(-self.logit))


def _about_addressee(text: Normalised) -> bool:
    """The line speaks of the other person: their things ("your school", "너네 담임"), second
    person not opened by "I", or a question without "I"."""
    words = text.text
    if _YOUR.search(words):
        return True  # "i'll pick you up from your school" is about the addressee's school
    first = _FIRST_PERSON.search(words) or _FIRST_PERSON_KO.search(words)
    if _SECOND_PERSON.search(words) or _SECOND_PERSON_KO.search(words):
        return not (first and first.start() == 0)
    asked = words.endswith("?") or bool(_QUESTION_KO.search(words) and "?" in words) or \
        bool(_ASKING.match(words))
    return asked and not first


def _about_others(text: Normalised) -> bool:
    """The line speaks of children in general ("중딩들 원래 그래", "kids these days"): it is
    evidence about nobody in the chat."""
    return bool(_GENERAL.search(text.text))


def bare_age(text: Normalised) -> int | None:
    """The age given as a bare answer ("15", "중2" as 14, "8th grade" as 13), else None."""
    bare = text.text.strip()
    age = _BARE_AGE.match(bare)
    if age:
        return int(age[1])
    grade = _BARE_GRADE.match(bare)
    if not grade:
        return None
    school = re.search(r"(중|고|초)([1-6])", bare)
    if school:
        return {"초": 7, "중": 13, "고": 16}[school[1]] + int(school[2]) - 1
    return int(re.match(r"\d+", bare)[0]) + 5  # an American grade


class People:
    """Everyone's minor evidence in one conversation, fed message by message."""

    def __init__(self) -> None:
        self.people: dict[str, MinorEvidence] = {}

    def of(self, person: str) -> MinorEvidence:
        return self.people.setdefault(person, MinorEvidence())

    def evidence(self, person: str | None) -> MinorEvidence:
        """The person's evidence; nobody (an addressee no one can name) has the prior's."""
        return self.of(person) if person else MinorEvidence()

    def read(self, index: int, writer: str, addressee: str | None, text: Normalised,
             cues: list[Cue], answers_age_question: bool) -> None:
        """Credit the line's evidence to the person it describes."""
        labels = {c.label for c in cues}
        if answers_age_question:
            age = bare_age(text)
            if age is not None and 8 <= age <= 17:
                self.of(writer).add("answered", EXPLICIT_SELF, index)
                return
            if age is not None and 18 <= age <= 80:
                self.of(writer).add("adult", ADULT_ANSWER, index)
                return
        if "parent" in labels and addressee:
            self.of(addressee).add("addressed-as-parent", ADDRESSED_AS_PARENT, index)
            self.of(writer).add("addressing-parent", ADDRESSING_PARENT, index)
        about_addressee = _about_addressee(text)
        if "adult" in labels and not about_addressee:
            self.of(writer).add("adult", ADULT_SELF, index)
        minor = max((c.weight for c in cues if c.label == "minor"), default=0.0)
        if not minor or _about_others(text):
            return
        if about_addressee:
            if addressee:
                self.of(addressee).add("said-of", ABOUT_OTHER, index)
        elif minor >= MINOR_STATED:
            self.of(writer).add("explicit", EXPLICIT_SELF, index)
        else:
            self.of(writer).add("context", CONTEXT_SELF, index)
