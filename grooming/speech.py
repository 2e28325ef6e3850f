"""Reported, quoted and meta speech: words that are about grooming, not grooming.

A parent forwarding what a man wrote to her son ("he said 'send me a pic and I'll give you
robux'"), a counsellor summing up a case, a police officer listing warning signs ("for example,
'keep this our secret'"), a news thread: each carries every stage's words, but none is said to
the person in the chat. A message that reports or quotes is still read (its cues are found as
usual) but the scorer discounts them (`REPORTED_FACTOR`), and the alert counts how many of a
speaker's messages were read as reported speech.

The signs are surface ones, kept narrow on purpose: a quotation of at least a few characters,
a reporting verb or ending next to it, or the framing of a lesson, a warning or the news.
"""

from __future__ import annotations

import re

from grooming.normalise import Normalised

# How much a stage said in reported speech still counts: a quoted request is not nothing (a
# groomer may "joke" with a quote), but a thread of them is a warning, not a threat.
REPORTED_FACTOR = 0.15

# A quotation of at least four characters between double, corner or single quotes; a single
# quote only where it opens after a space and closes before one (not the apostrophes of
# "don't tell anyone it's").
_QUOTED = re.compile(r"[\"“「『][^\"“”「」『』]{4,}[\"”」』]"
                     r"|(?:^|\s)['‘][^'‘’]{4,}['’](?=$|[\s.,!?~])")
# Korean reporting endings and framings, on the text without spaces.
_KO_REPORTED = re.compile(
    r"(라고|이라고|하고|냐고|자고|달라고|하라고|준다고|주겠다고|한다고)(했|하더|하네|말했|물어|"
    r"그랬|그러|보냈|묻|협박|꼬드|하면서|해서|하길래|한대|하대)|"
    r"(했|그랬|보냈|물었|말했|준|주겠|한)대(요|서)?|래요|랬대|했다고|했다더|라더라|"
    r"(라는|이라는|하자는|달라는|주겠다는|하라는)(말|문자|메시지|카톡|디엠|식|식으로|내용)|"
    r"예를들(어|면)|예시|예컨대|수법|경고|주의(하세요|하시|사항|해야)|조심(하세요|하시|해야)|"
    r"기사|뉴스|보도|신고(하세요|해주세요|방법|센터|하시)|교육(자료|시간)|징후|위험신호|"
    r"(이런|그런)(말|문자|메시지)(을|를|은|이|가)?(하면|받으면|보내면|오면)")
_EN_REPORTED = re.compile(
    r"\b(he|she|they|this guy|some guy|a man|the man|someone|somebody) "
    r"(said|says|told|tells|asked|asks|wrote|writes|texted|messaged|was like|keeps saying|"
    r"kept saying|offered|promised|threatened)\b|"
    r"\b(told|asked|texted|messaged) (my|her|his|their|our) (son|daughter|kid|child|boy|girl|"
    r"student)|"
    r"\b(for example|for instance|e\.g\.|such as|things like|lines like|messages like|"
    r"phrases like|warning signs?|red flags?|be careful|watch out for|if someone (says|asks|"
    r"offers|tells)|if anyone (says|asks|offers|tells)|report (it|them|this)|the article|"
    r"the news|news (report|story)|according to|the police said|predators? (often|usually|"
    r"will|may|might)|groomers? (often|usually|will|may|might))\b")


def reported(text: Normalised, raw: str) -> bool:
    """Whether the message reports, quotes or discusses words rather than saying them."""
    return bool(_QUOTED.search(raw) or _KO_REPORTED.search(text.compact)
                or _EN_REPORTED.search(text.text))
