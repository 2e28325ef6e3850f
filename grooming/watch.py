"""`haechi chats watch`: follow open chat rooms as they happen and alert on grooming there.

An export is scanned after the harm; a room that is watched can alert while the approach is
under way. Each room is one conversation (its id a pseudonym of the room, speakers
pseudonymised as the importers do it), scored per directed pair like a scanned export
(`grooming.scoring`), and each alert is the same JSON object `haechi chats scan --json` prints
(`grooming.scan.report`), with `room` (the URL watched) in place of `file`.

Cost: every new message is tagged once (normalised, rule cues, and the classifier where it
would read it in a scan); then the pairs are scored again over the room's last
WINDOW_MESSAGES messages. Lines that arrive together (one read from the network) are tagged
in one batch and scored once, so a burst costs one scoring, not one per line.

An alert is printed once per (room, speaker, target) when its tier first reaches review or
urgent, and again if it rises from review to urgent. It is printed at once; delivery to the
configured sinks (webhook, e-mail) and keeping its excerpt happen in a worker thread after it,
so a slow webhook never holds up the watching (their outcome goes to stderr).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import json
import signal
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TextIO

from grooming.alerts import AlertSink, describe, send
from grooming.classifier import StageClassifier, worth_embedding
from grooming.cues import STAGES, Cue
from grooming.excerpts import ExcerptStore
from grooming.lines import LineModel
from grooming.normalise import Normalised
from grooming.pseudonyms import Pseudonymiser
from grooming.rooms import Room, RoomError, RoomUrl, Said, open_room, parse_room_url
from grooming.scan import report
from grooming.schema import Conversation, Message
from grooming.scoring import TIERS, ConversationScorer, SpeakerState, rules_only, together

# How many of a room's latest messages are scored again at each new one. The grooming suite's
# approaches alert by about their 10th message and its longest conversations are a few dozen
# lines, so 200 holds such an approach whole even when it is interleaved with three or four
# times as much other talk in a group room; scoring grows with the window (about 15 ms for 200
# messages on one core), so a busy room stays at hundreds of messages a second. Stages older
# than the window are forgotten: an approach spread thinner than that is missed (a per-pair
# memory beyond the window would be the next step).
WINDOW_MESSAGES = 200
SOURCE = "irc"
# Alerts still being delivered when the watcher stops get this long to finish.
DELIVERY_GRACE = 30.0

Tagged = tuple[Normalised, list[Cue]]


@dataclass
class LiveRoom:
    """One room's conversation so far (its last WINDOW_MESSAGES messages, numbered from the
    room's first) and which pairs it has already alerted on."""

    conversation_id: str
    classifier: StageClassifier | None
    window: int = WINDOW_MESSAGES
    scorer: ConversationScorer = field(default_factory=lambda: ConversationScorer(
        together(rules_only, LineModel.load().cues)))
    messages: deque[Message] = field(init=False)
    tagged: deque[Tagged] = field(init=False)
    seen: int = 0  # messages in the room since the watcher joined
    alerted: dict[tuple[str, str | None], int] = field(default_factory=dict)  # -> tier index
    # The classifier is asked, as in a scan, only once the conversation has a stage the rules
    # read; messages worth embedding before that wait here (each is still embedded once).
    stage_seen: bool = False
    waiting: list[Tagged] = field(default_factory=list)
    last_pairs: dict[tuple[str, str | None], SpeakerState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.messages = deque(maxlen=self.window)
        self.tagged = deque(maxlen=self.window)

    def add(self, lines: list[tuple[str, str, str | None]],
            time: dt.datetime | None = None) -> list[SpeakerState]:
        """Add (speaker, text, addressee) lines, speakers already pseudonymised; the pairs
        whose tier rose because of them, in the order they rose."""
        time = time or dt.datetime.now(dt.UTC)
        new = [Message(self.seen + i, time, speaker, text,
                       mentions=(to,) if to and to != speaker else ())
               for i, (speaker, text, to) in enumerate(lines)]
        self.seen += len(new)
        tagged = self.scorer.tag(Conversation(self.conversation_id, SOURCE, new))
        self._classify(tagged)
        self.messages.extend(new)
        self.tagged.extend(tagged)
        self.waiting = self.waiting[-self.window:]
        pairs, _ = self.scorer.pairs(self.conversation(), list(self.tagged))
        risen = []
        for key, state in pairs.items():
            tier = TIERS.index(state.tier)
            if tier > self.alerted.get(key, 0):
                self.alerted[key] = tier
                risen.append(state)
        risen.sort(key=lambda s: s.first_alert_message or 0)
        self.last_pairs = pairs
        return risen

    def conversation(self) -> Conversation:
        return Conversation(self.conversation_id, SOURCE, list(self.messages))

    def _classify(self, tagged: list[Tagged]) -> None:
        """The classifier's cues on the new messages worth embedding, as
        `StageClassifier.cues` gives them in a scan (rules first; the classifier only in a
        conversation where the rules read a stage; a stage both read keeps the rules')."""
        if self.classifier is None:
            return
        chosen = [entry for entry in tagged
                  if worth_embedding(entry[0], {c.label for c in entry[1]})]
        if not self.stage_seen:
            if not any(c.label in STAGES for _, cues in tagged for c in cues):
                self.waiting += chosen
                return
            self.stage_seen = True
            chosen, self.waiting = self.waiting + chosen, []
        self.classifier.add_to(chosen)

    def best_by_speaker(self) -> dict[str, SpeakerState]:
        """Every speaker's riskiest pair, as `ConversationScorer.score` ranks them."""
        best: dict[str, SpeakerState] = {}
        for state in self.last_pairs.values():
            held = best.get(state.speaker)
            if held is None or (TIERS.index(state.tier), state.score) > (
                    TIERS.index(held.tier), held.score):
                best[state.speaker] = state
        return best


def alert_for(room: LiveRoom, state: SpeakerState, url: str) -> dict[str, Any]:
    """The scan's result object for this pair: the pair in full, every speaker in brief."""
    conversation = room.conversation()
    result = report(conversation, {state.speaker: state})
    result["speakers"] = report(conversation, room.best_by_speaker())["speakers"]
    result["messages"] = room.seen  # the room's, not the window's
    result["room"] = url
    return result


class Watcher:
    """Follows every room at once, each in its own task: a room that fails is reported and
    the others go on."""

    def __init__(self, urls: list[str], json_output: bool = True,
                 sinks: list[AlertSink] | None = None, store: ExcerptStore | None = None,
                 nick: str = "haechi", out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                 classifier: StageClassifier | None = None) -> None:
        self.urls = urls
        self.json_output = json_output
        self.sinks = sinks or []
        self.store = store
        self.nick = nick
        self.out, self.err = out, err
        self.classifier = classifier if classifier is not None else StageClassifier.load()
        self.pseudonym = Pseudonymiser()
        self.failed = 0
        self.alerts = 0
        self._delivery = concurrent.futures.ThreadPoolExecutor(1, "haechi-alerts")
        self._pending: set[asyncio.Future] = set()

    def say(self, text: str) -> None:
        print(f"haechi chats watch: {text}", file=self.err, flush=True)

    async def run(self) -> int:
        """Watch until SIGINT or SIGTERM (or until no room is left); 0 when every room was
        watched to the end, 1 when one could not be."""
        rooms: list[RoomUrl] = []
        for text in self.urls:
            try:
                rooms.append(parse_room_url(text))
            except RoomError as exc:
                self.failed += 1
                self.say(str(exc))
        if not rooms:
            return 1
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        tasks = [asyncio.create_task(self._follow(url)) for url in rooms]
        stopping = asyncio.create_task(stop.wait())
        try:
            pending = set(tasks)
            while pending and not stop.is_set():
                _, pending = await asyncio.wait(pending | {stopping},
                                                return_when=asyncio.FIRST_COMPLETED)
                pending.discard(stopping)
        finally:
            for task in (*tasks, stopping):
                task.cancel()
            await asyncio.gather(*tasks, stopping, return_exceptions=True)
            if self._pending:
                self.say(f"waiting for {len(self._pending)} alert(s) to be delivered")
                await asyncio.wait(self._pending, timeout=DELIVERY_GRACE)
            self._delivery.shutdown(wait=False, cancel_futures=True)
        return 1 if self.failed else 0

    async def _follow(self, url: RoomUrl) -> None:
        room: Room = open_room(url, self.nick, self.say)
        live = LiveRoom(self.pseudonym(url.key, "C"), self.classifier)
        try:
            async for batch in room.batches():
                for state in live.add(self._lines(batch)):
                    self._emit(alert_for(live, state, url.text))
        except RoomError as exc:
            self.failed += 1
            self.say(str(exc))

    def _lines(self, batch: list[Said]) -> list[tuple[str, str, str | None]]:
        """Nicknames become pseudonyms exactly as the importers make them (the Pseudonymiser
        folds case, as KakaoTalk display names are folded)."""
        return [(self.pseudonym(s.nick), s.text, self.pseudonym(s.mention) if s.mention
                 else None) for s in batch]

    def _emit(self, alert: dict[str, Any]) -> None:
        self.alerts += 1
        if self.json_output:
            print(json.dumps(alert, ensure_ascii=False), file=self.out, flush=True)
        else:
            print(describe(alert), file=self.out)
            print(f"  room: {alert['room']}\n", file=self.out, flush=True)
        if self.sinks or self.store is not None:
            future = asyncio.get_running_loop().run_in_executor(self._delivery, self._deliver,
                                                                alert)
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)

    def _deliver(self, alert: dict[str, Any]) -> None:
        """In the worker thread: keep the excerpt and send, once per speaker and tier across
        runs too (as a scan does: a watcher restarted on the same room must not tell the
        agency twice)."""
        where = f"{alert['room']}: alert on {alert['speaker']} ({alert['tier']})"
        try:
            if self.store is not None:
                tiers = TIERS[TIERS.index(alert["tier"]):]
                if self.store.alerted(alert["conversation"], alert["speaker"], tiers):
                    self.say(f"{where}: already alerted at this tier")
                    return
                self.store.keep(alert)
            for sink, outcome in send(alert, self.sinks).items():
                self.say(f"{where}: by {sink}: {outcome}")
        except Exception as exc:  # a database that fails must not end the watching
            self.say(f"{where}: could not be kept or sent: {type(exc).__name__}: {exc}")


def watch(urls: list[str], json_output: bool = True, sinks: list[AlertSink] | None = None,
          store: ExcerptStore | None = None, nick: str = "haechi") -> int:
    return asyncio.run(Watcher(urls, json_output, sinks, store, nick).run())
