"""Per-message cues by rules: the grooming stages, and the context that changes what they mean.

A cue is evidence of one stage in one message, with a weight (how strongly the words point to
that stage on their own). The rules read normalised text: Korean patterns the text without
spaces (spacing varies), English patterns the text with word boundaries. Korean words that
hide inside innocent ones in the text without spaces (보지 in 보지마, 자지 in 피해자지원,
가슴 in 가슴이 아파) are read as morphemes instead (`grooming.morphology`): their rule's pattern
only picks the messages worth analysing. The classifier
(`grooming.classifier`) finds stages in words no rule lists; the scorer combines both.

Besides the stages, four signals of context are read here, never scored on their own:
- `minor`: the writer says something only a child says (their grade, age under 18, homework,
  a curfew), or the other person says it of them; stated (an age, a grade) or implied;
- `adult`: the writer's adult life (a shift, a car, a wife, rent);
- `parent`: the writer is addressed as mum, dad or teacher (a parent asking "are you home
  alone?" is not grooming);
- `place_time`: a place or a time, which turns a proposed meeting into an urgent one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from grooming import morphology
from grooming.normalise import Normalised

STAGES = {
    "age_probe": "asks the child's age, grade or school",
    "alone": "asks whether the child is alone or unsupervised",
    "flattery": "flattery and trust building",
    "gifts": "gifts, money or 'sponsorship'",
    "secrecy": "asks for secrecy",
    "platform_move": "moves the chat to another messenger",
    "media_request": "asks for photos or a video call",
    "sexual": "sexual talk",
    "meeting": "arranges a meeting",
    "isolation": "steers the child away from trusted adults and friends",
    "threat": "pressure, threats or sextortion",
}


# The weights of the `minor` signal: an age or grade stated outright, or only implied.
MINOR_STATED = 1.0
MINOR_IMPLIED = 0.6


@dataclass(frozen=True)
class Rule:
    label: str  # a stage or a context signal
    weight: float
    korean: re.Pattern[str] | None
    english: re.Pattern[str] | None
    # Korean words read as morphemes: `korean` then only picks the messages to analyse, and the
    # rule matches where this finds a word in its sense (`grooming.morphology`).
    morphemes: Callable[[tuple[morphology.Morph, ...]], list[str]] | None = None


def _rule(label: str, weight: float, korean: str = "", english: str = "",
          morphemes: Callable[[tuple[morphology.Morph, ...]], list[str]] | None = None) -> Rule:
    return Rule(label, weight, re.compile(korean) if korean else None,
                re.compile(rf"\b(?:{english})") if english else None, morphemes)


RULES = [
    # --- stages ----------------------------------------------------------------------------
    _rule("age_probe", 0.8,
          r"몇살|나이(가|는|좀|몇)|몇학년|학년이야|학년이지|무슨학교|어느학교|학교어디|어디학교|"
          r"중학생(이야|이지|이니|맞)|고등학생(이야|이지|이니|맞)|초등학생(이야|이지|이니)|"
          r"생일(이)?언제|몇년생|띠가뭐",
          r"how old|what grade|which grade|what school|which school|age sex location|"
          r"your age|are you in (middle|high|elementary) school|what year (were you|are you) "
          r"born|are you (1[0-7]|a teen)"),
    _rule("alone", 0.8,
          r"혼자(있|야|니|냐|살)|집에아무도|아무도없|부모님(계|있|안계|없|언제|몇시|주무)|"
          r"엄마(언제|집에있|없어|몇시|주무)|아빠(언제|집에있|없어|몇시|주무)|방문(잠|닫)|"
          r"문잠궈|식구들다?(자|없)|보는사람없",
          r"home alone|are you alone|by yourself|(parents|mom|dad|mum) (home|around|asleep|"
          r"gone|out|away|at work)|anyone (else )?(home|there|around)|lock (your|the) door|"
          r"nobody (is )?(home|around)|when do your parents|is your (mom|dad|mum) home"),
    _rule("flattery", 0.5,
          r"(너무|진짜|완전|되게)?(예쁘|이쁘|귀엽|귀여워)|성숙|나이보다|어른스럽|특별해|너만(이|은)|"
          r"너밖에없|이해해주는사람|내가제일잘|나만믿|믿어도돼|너는달라|다른애들이랑달|보고싶어|"
          r"사랑해|내꺼",
          r"so (pretty|beautiful|cute|hot)|you are (pretty|beautiful|cute|gorgeous|special)|"
          r"mature for your age|so mature|you are special|only one who (gets|understands)|"
          r"trust me|you can tell me anything|not like (other|the other)|i understand you|"
          r"nobody understands you|"
          r"miss you|love you|my (princess|angel|baby)"),
    _rule("gifts", 0.7,
          r"용돈|선물(사|줄|보내|해줄)|사줄게|사줄까|사줄래|기프티콘|문화상품권|스폰|돈(줄|보내|벌)|"
          r"만원(줄|보내)|충전해줄|게임머니|아이템(사|줄)|알바(할래|해볼|줄게)|현질",
          r"buy you|gift ?card|send you (money|cash)|pay you|cash ?app|venmo|paypal|sponsor|"
          r"robux|v-?bucks|allowance|get you (a|an|some|new)|i will (buy|get) you"),
    _rule("secrecy", 0.9,
          r"비밀(이야|로|지켜|이다|로해)|우리만(의|알)|아무한테도|아무에게도|(엄마|아빠|부모님|"
          r"친구|선생님)(한테|에게|께)(는)?(말하지|얘기하지|말하면|얘기하면)|(말|얘기)하지마|"
          r"지워(줘|라|야)|삭제해|대화(지워|삭제)|들키|(한테|에게)말하면(큰일|안돼|안된)",
          r"(our|a|little) secret|do not tell|don'?t tell|keep (this|it) (between|quiet|secret)|"
          r"between (us|you and me)|nobody (needs to|has to) know|delete (this|the chat|our|"
          r"these|the messages)|do not let (your|anyone)|no one can know|"
          r"(can'?t|can not|cannot|must not) tell (your|anyone|anybody)"),
    _rule("platform_move", 0.6,
          r"라인(으로|아이디|깔|해\?|있어)|텔레그램|개인톡|디스코드(로|아이디|있)|스냅챗|"
          r"인스타그램(디엠|dm|아이디)|카톡아이디|번호(줘|알려|좀|뭐)|오픈채팅|위커|시그널(로|깔)|"
          r"다른(앱|메신저)",
          r"add me on|snapchat|kik|telegram|whatsapp|message me on|your (phone )?number|"
          r"text me at|discord|move to|switch to|signal|wickr|talk (somewhere|on) (else|"
          r"another)|private (chat|app)"),
    _rule("media_request", 0.9,
          r"사진(보내|보낼|좀|줘|찍어|보여|올려)|셀카|얼굴(보여|좀)|영상통화|페이스톡|캠(켜|킬|틀)|"
          r"몸(보여|사진)|전신(사진|보여)|찍어서보내|야한사진|몸사진|인증(샷|사진)|보여줘",
          r"send (me )?(a |an |some |your )?(picture|photo|selfie|video|nude)|video call|"
          r"facetime|turn on (your |the )?camera|show me (your|you)|what are you wearing|"
          r"see (you|your) (on camera|body)|take a (picture|photo|pic)|nude pictures"),
    # Words no innocent word holds stay substrings; the others are read as morphemes (below).
    _rule("sexual", 1.0,
          r"속옷|팬티|섹스|몸매|야한사진|첫경험",
          r"sexy|naked|nude|undress|bra\b|underwear|panties|boobs|breasts|sex\b|kiss you|"
          r"touch (you|yourself|me)|virgin|horny|turn me on|make out|in bed with|kissed|"
          r"take off your|(shirt|clothes|pants) off"),
    _rule("meeting", 0.8,
          r"만나(자|서|볼|줄|고|러)|(?<!해)볼래|데리러|픽업|어디살|주소(알려|뭐|줘)|집앞|놀러(와|갈)|"
          r"(토요일|일요일|주말|내일|오늘|방과후|학교끝나고)(에)?(만나|볼|시간|나와)|모텔|"
          r"차(태워|로데리)|나와(줄|볼)|만날래|만날까|(에서|앞|앞으로)(보자|만나|기다릴게|나와)",
          r"meet (up|me|you)|pick you up|where do you live|your address|come over|hang out|"
          r"in real life|see you (on|this|tomorrow|saturday|sunday|tonight|after)|my car|"
          r"(hotel|motel) room|sneak out|(see you|meet me|i'?ll be|i will be|wait for you) "
          r"(at|in) the|at the (station|mall|park|library|gas station)"),
    # --- the same stages in the wider wordings of everyday chat -----------------------------
    _rule("age_probe", 0.8,
          r"학생이(야|니|지|에요|세요)\?|올해몇|나이(좀|알려|어떻게)|(중|고|초)딩이(야|지|냐|니)|"
          r"몇학년이(니|냐|에요)|학교다녀|학생맞",
          r"(still|are you) in (school|high school|middle school|grade)|what year are you in|"
          r"high ?schooler|what age|how young|what grade r|are you (under|over) 18|"
          r"(are you|you) (a )?(minor|kid|student)\b"),
    _rule("alone", 0.8,
          r"누구랑있|부모님(뭐하|어디)|엄마아빠(다|없|나갔|어디)|너밖에없|혼자(야|니|냐)\?|"
          r"집에(누구|아무)|다(나갔|잠들)|방에혼자",
          r"where are your (parents|mom|dad|mum|folks)|(is )?anyone (with|near) you|"
          r"who else is (there|home)|anyone see your screen|in your room alone|"
          r"(parents|folks) (out|gone|away|asleep|sleeping)|are you alone|(you|u) alone\b"),
    _rule("flattery", 0.5,
          r"여신|매력(있|적)|최고야|너같은애|예뻐|이뻐|멋있|완벽해|천사|인형같",
          r"gorgeous|stunning|you'?re amazing|you are amazing|my favou?rite|beautiful|"
          r"perfect|so hot|attractive|angel|prettiest|such a catch"),
    _rule("gifts", 0.7,
          r"쇼핑(시켜|하러|가자)|돈(필요|있으면|줄게|보내)|사줄|선물|충전해|결제해줄|"
          r"원하는거다",
          r"money for|a present|presents|top ?up|shopping|new (phone|shoes|clothes|iphone)|"
          r"(give|send) you (money|cash|\$)|buy (it|that|one) for you"),
    _rule("secrecy", 0.9,
          r"몰래|아무도모르게|딴데(서)?(하지|말하지|얘기하지)|(엄마|아빠|부모님)(가|이)?알면|"
          r"기록지워|톡지워|비밀|말하지마|얘기하지마|말하면안",
          r"don'?t mention|do not mention|erase (our|the|these|this)|wouldn'?t understand|"
          r"keep it (private|secret|quiet)|nobody can (find out|know)|no one (can|will|needs to) "
          r"(know|find out)|our little|just between|secret"),
    _rule("platform_move", 0.6,
          r"카톡(아이디|id|해|있)|인스타(알려|아이디|뭐|해)|라인(해|있|아이디)|텔레(로|그램)|"
          r"전화번호|번호(줄|알려|뭐)|위챗|왓츠앱|스냅",
          r"insta\b|instagram|snap\b|wechat|line (app|instead|id)|chat on line|your handle|"
          r"phone number|number\?|private message me|whats ?app"),
    _rule("media_request", 0.9,
          r"사진(한장|하나|좀|찍)|얼굴(좀)?보(자|여)|영상(찍|보내)|모습보여|셀카(찍|보내)|"
          r"찍어(줘|봐|서)|보여줄래|인증해",
          r"(see|have|get) a (pic|picture|photo)|pic of you|picture of you|photo of you|"
          r"send (me )?(a )?video|cam (call|chat)|show me what|take a selfie|selfie for me|"
          r"on camera|webcam"),
    _rule("sexual", 1.0,
          r"몸(보고|보여|좋|매)|알몸|침대",
          r"had sex|have sex|under that|without (clothes|your clothes)|nice body|your body|"
          r"touch yourself|in your underwear|naughty|dirty (pics|pictures|talk)|bed with me"),
    _rule("meeting", 0.8,
          r"한번보자|(주말|토요일|일요일|방과후|내일|오늘)(에)?(놀자|보자|만나)|너네동네|"
          r"우리집(에)?(놀러|와)|(앞|밖)에서기다릴|데리러|만나서|직접보|"
          r"\d{1,2}시(에)?.{0,8}(역|출구|앞|공원|카페)",
          r"come see you|visit you|hang out in person|in person|come to my (place|house|car)|"
          r"wait for you (outside|at|near)|outside your (school|house)|meet (in person|irl)|"
          r"pick you up|come over"),
    # The sexual words that hide inside innocent ones (보지마, 피해자지원, 의자위에, 같이자전거,
    # 해야한거, 이성관계, 브라질, 밀키스) or share their spelling (가슴이 아파, 벗어나다, 빨래를
    # 빨아, 개인정보 노출, 잠자리 잡기): found in the text without spaces, kept where the
    # morphemes say they are meant sexually.
    _rule("sexual", 1.0,
          r"야한|벗(어|고|은)|브라|가슴|성관계|자위|키스|만져|노출|처녀|흥분|보지|자지|빨아|"
          r"잠자리|같이자",
          morphemes=morphology.sexual_terms),
    # --- turning the child from the people who would help, then pressure ------------------
    _rule("isolation", 0.8,
          r"(엄마|아빠|부모님|선생님|친구들|걔네)(은|는|가|이|들은)?(너|널)?(를)?(절대)?이해못|"
          r"(엄마|아빠|부모님|선생님|친구들)(은|는|이|가)?너(를|에)?(대해)?(잘)?몰라|"
          r"나만(너|널)(를)?이해|나밖에없|(친구들|걔네)(랑|하고)(놀지마|만나지마|연락하지마)",
          r"(your|ur) (mom|mum|dad|parents|folks|teachers?|friends) (would ?n'?t|wont|won'?t|"
          r"do ?n'?t|dont|never) (get it|understand|get you)|only i (get|understand) you|"
          r"they (do ?n'?t|dont|wont|won'?t) (get|understand) (you|us)|"
          r"(you|u) do ?n'?t need (them|your friends|your parents)|nobody (else )?gets you"),
    _rule("threat", 1.0,
          r"뿌린다|뿌릴(거|게|까)|유포|퍼뜨|퍼트|(친구들|학교|부모님|엄마|가족)(한테|에|에게)"
          r"(다)?(보낸다|보낼거|보낼게|알린다|알릴거|뿌)|안보내면|안하면(다|진짜)|각오해|"
          r"가만안둬|신상(털|공개)",
          r"(send|post|share|show|leak) (it|this|these|them|the pics?|your pics?|ur pics?|"
          r"the (photos?|video)) to (your|ur|all|every)|(or|otherwise) (i'?ll|i will) "
          r"(send|post|share|tell|show|leak)|expose you|everyone will see|you owe me|"
          r"(unless|if) you (do ?n'?t|dont) send"),
    # --- context ---------------------------------------------------------------------------
    # A minor's age or grade stated outright (MINOR_STATED), then the signs that imply one
    # (MINOR_IMPLIED): school, homework, a curfew, parents' rules, and the looser wordings of
    # an age or grade ("8th grade", "middle school") that the stated rule does not take.
    _rule("minor", MINOR_STATED,
          r"(나|저|난|전|내가)(는)?(중|고|초)[1-6]|(^|네|응|어|저|나|난)?(중|고)[1-3](이에요|이야|인데|"
          r"임|요|이고|이라)|초[4-6](이에요|이야|인데|임|요)|(나|저|난|전)(는)?(중학생|초등학생|고등학생|"
          r"중딩|고딩|초딩)|(1[0-7]|열(한|두|세|네|다섯|여섯|일곱)?|여덟|아홉)살(이에요|이야|인데|임|이요|"
          r"요|입니다|이고|이라)|(0[7-9]|1[0-6])년생",
          r"\bi am (1[0-7]|twelve|thirteen|fourteen|fifteen|sixteen|seventeen)\b|"
          r"\bi am (in )?(6|7|8|9|10|11|12)th( grade)?\b|\b(1[0-7]) years old\b|"
          r"\b(turning|turn) (1[0-7])\b|\bi am (a )?(freshman|sophomore|junior) in high school|"
          r"\bi am in (middle|high|elementary) school\b|"
          r"\b(1[0-7]) in (jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"),
    _rule("minor", MINOR_IMPLIED,
          r"(나|저|난|전|내가)(는)?(중|고|초)[1-6]|(중|고)[1-3](이에요|이야|인데|임|요)|"
          r"초[4-6](이에요|이야|인데|임|요)|(나|저|난)(는)?(중학생|초등학생|고등학생)|"
          r"(^|네|응|어|저|나|난)(중학생|초등학생|고등학생)(이에요|이야|인데|임|입니다|이요|요)|"
          r"(1[0-7]|열(한|두|세|네|다섯|여섯|일곱)?|여덟|아홉)살(이에요|이야|인데|임|이요|요|"
          r"입니다)|학원(끝|가야|가|에)|숙제|수행평가|"
          r"(엄마|아빠|부모님)(가|께서|이).{0,6}(안된|안돼|못하게|혼내|부르|하지말|뭐라)|통금|개학|"
          r"반친구|담임|학교끝나|급식",
          r"i am (1[0-7]|twelve|thirteen|fourteen|fifteen|sixteen)|\b(1[0-7]) years old|"
          r"(6|7|8|9|10|11)th grade|middle school|freshman|sophomore|homework|my (mom|dad|"
          r"mum) (says|will not|won'?t|would kill)|curfew|grounded|after school"),
    # Adult life, of the writer: a shift, a car, a wife, rent, the army.
    _rule("adult", 1.0,
          r"퇴근|출근|야근|회사(에서|끝|가|일)|회식|월급|운전(해|할|하고|중)|면허|내차|차(끌고|몰고)|"
          r"와이프|마누라|남편이|와이프가|우리애(들)?|군대|전역|제대|월세|대출|술(마시|한잔|먹)|"
          r"(2\d|3\d|4\d)살(이야|이에요|인데|임|이고)|직장|상사가|알바끝나고",
          r"\bmy (shift|boss|wife|husband|landlord|mortgage|rent|car|truck|apartment|kids|"
          r"coworkers?|job|paycheck|manager)\b|\b(after|before) (work|my shift)\b|\bat work\b|"
          r"\bi (can|will|could) drive\b|\bi will pick you up\b|\bi drive\b|"
          r"\bmy (license|licence)\b|"
          r"\bi am (2\d|3\d|4\d)\b|\b(2\d|3\d|4\d) years old\b|\b(a )?beer\b|\bin college\b|"
          r"\bthe army\b|\bi work (at|as|in|nights)\b|\bpay (my )?bills\b|\btax(es)?\b"),
    # Vocatives only: "엄마, ..." or "thanks mom", never "엄마가 ..." ("my mum ...").
    _rule("parent", 1.0, "",
          r"^(mom|dad|mum|mommy|daddy|teacher|coach|aunt(ie)?|grandma|grandpa|nana)(\s|[,.!?~]|$)|"
          # A Korean family word opening a line is often its subject ("엄마 깬거같아": mum woke
          # up), so it is a vocative only set off by punctuation; an honorific title is
          # almost always said to its person ("선생님 숙제 사진 보낼게요").
          r"^(엄마|아빠|이모|고모|할머니|할아버지)([,.!?~]|$)|^(선생님|쌤|어머니|아버지|코치님)(\s|[,.!?~]|$)|"
          r"(thanks|thank you|love you|ok|okay|yes|bye|고마워|사랑해|알았어|응|네|감사합니다),? "
          r"(mom|dad|mum|teacher|coach|grandma|grandpa|엄마|아빠|선생님|이모|할머니|할아버지)"
          r"[.!?~]*$"),
    _rule("place_time", 1.0,
          r"\d{1,2}시|역(에서|앞|으로|출구)|앞에서|공원|카페|피시방|놀이터|편의점|모텔|호텔|"
          r"(토요일|일요일|주말|내일|오늘밤|방과후|학교끝나고)",
          r"\d{1,2} ?(am|pm|o'?clock)|\d{1,2}:\d{2}|tomorrow|tonight|saturday|sunday|friday|"
          r"after school|at the (park|mall|station|cafe|library|gas station)|motel|hotel|"
          r"this weekend"),
]


@dataclass(frozen=True)
class Cue:
    label: str
    weight: float
    source: str  # "rules" or "classifier"


def rule_cues(text: Normalised) -> list[Cue]:
    """Every label whose rule matches the message (the strongest match per label)."""
    found: dict[str, float] = {}
    for rule in RULES:
        hit = (rule.korean is not None and rule.korean.search(text.compact)
               and (rule.morphemes is None
                    or rule.morphemes(morphology.morphemes(text.text)))) or \
            (rule.english is not None and rule.english.search(text.text))
        if hit and rule.weight > found.get(rule.label, 0.0):
            found[rule.label] = rule.weight
    return [Cue(label, weight, "rules") for label, weight in found.items()]
