"""The case store: one case per (victim, URL), opened from match events.

A case is the unit a reviewer approves and a notice cites. Repeated events for the same victim
and URL (another algorithm, another frame of a video, a re-crawl) join the open case instead of
opening another. A pair a reviewer rejected as a false match (victim, file SHA-256) never opens
a case again. A victim's picture that comes back after removal opens a new case linked to the
removed one. Every change is written to the hash-chained audit log. A case found in a segment
of a streamed video keeps the stream's manifest URL and the segment's start beside the
segment's URL, and its `second` is the whole video's (matcher/events.py).

An event's values come from the site it was found on (URLs, headers, server address) and, in
cluster mode, from a stream anyone with Redis access can write to, so each is checked before it
reaches the table (`checked_event`). Each event is a transaction of its own, and so is each
site's notice, drafted once the batch's cases are in: a value that still breaks its INSERT, or
a notice that cannot be drafted, costs that event or that site alone. The failure is recorded
(IntakeReport, the log, and `notice:draft-failed` in the audit log for a notice) and everything
else goes on. A site's cases whose notice failed stay `detected` and are listed by its next
draft.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import math
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, or_, select, text

from crawler.records import (
    UnsafeValue,
    bounded,
    headers_value,
    ip_value,
    optional_url_value,
    site_value,
    storable,
    url_value,
)
from crawler.security_txt import CONTROL_CHARACTERS
from engines.objects import ObjectStore
from engines.sealed import KEY_VARIABLE, SealedMediaError, media_cipher, rekeyed, sealed_key
from matcher.events import MatchEvent
from takedown import audit
from takedown.evidence import evidence_store, keep_encrypted_copy, seal_media_copy
from takedown.ladder import drop_case
from takedown.notices import NoticeDrafter, reopen
from takedown.references import reference_of, stream_of
from takedown.schema import cases, false_matches, notices
from takedown.status import OPEN, transition

Clock = Callable[[], dt.datetime]
log = logging.getLogger(__name__)

LIST_FIELDS = ("id", "victim", "image_url", "page_url", "site", "algorithm", "distance",
               "second", "sha256", "server_ip", "detected_at", "status", "reupload_of",
               "notice_id")
# Longest failure text kept (in the audit log, a report, a dead letter): a database error
# quotes the statement and its values, which may be whatever the site wrote.
MAX_ERROR_CHARS = 500
# The largest value of an SQL INTEGER column (distance): PostgreSQL refuses anything above.
MAX_INTEGER = 2**31 - 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")
# An object key as engines/objects.py makes them: no '..', no leading '/', nothing odd.
_STORE_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9/_.-]*$")


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def case_json(row: Any, fields: tuple[str, ...] = LIST_FIELDS) -> dict[str, Any]:
    data = {name: row[name] for name in fields}
    for name, value in data.items():
        if isinstance(value, dt.datetime):
            data[name] = value.isoformat()
    data["reference"] = reference_of(row["id"])
    return data


def url_key(url: str) -> str:
    """What a case is looked up by: the SHA-256 of its URL (see migration 0002)."""
    return hashlib.sha256(url.encode()).hexdigest()


def failure_text(exc: BaseException) -> str:
    """`exc` as a bounded line that any column or stream can take."""
    return bounded(" ".join(f"{type(exc).__name__}: {exc}".split()), MAX_ERROR_CHARS)


def _name(value: object, field: str) -> str:
    """A name Haechi gave (victim, algorithm): text of one line that fits its column."""
    limit = cases.c[field].type.length
    if not isinstance(value, str) or not value.strip():
        raise UnsafeValue(f"{field}: empty or not text")
    if len(value) > limit or CONTROL_CHARACTERS.search(value) or storable(value) != value:
        raise UnsafeValue(f"{field}: longer than {limit} characters or not printable")
    return value


def _matching(pattern: re.Pattern[str], value: object, field: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise UnsafeValue(f"{field}: not of the expected form")
    return value


def _number(value: object, field: str, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not 0 <= value <= MAX_INTEGER):
        raise UnsafeValue(f"{field}: not a finite number from 0 to {MAX_INTEGER}")
    return value


def checked_event(event: MatchEvent) -> MatchEvent:
    """`event` with each value a case keeps made to fit its column, or UnsafeValue naming the
    value that cannot be stored without changing what it says.

    URLs and the site must be what they claim to be (crawler/records.py's checks); headers are
    bounded and a server address that is no IP address is dropped, since the case stands
    without them; a store key that could reach outside the object store is dropped too, and
    so is a segment's manifest URL that is no usable URL (the segment's own URL still names
    the file). A segment's start must be a second like `second`.
    """
    store_key = event.store_key
    if store_key is not None and (not isinstance(store_key, str) or ".." in store_key
                                  or len(store_key) > cases.c.store_key.type.length
                                  or not _STORE_KEY.match(store_key)):
        store_key = None
    if not isinstance(event.fetched_at, dt.datetime) or not isinstance(event.detected_at,
                                                                         dt.datetime):
        raise UnsafeValue("fetched_at/detected_at: not times")
    return dataclasses.replace(
        event,
        victim=_name(event.victim, "victim"), algorithm=_name(event.algorithm, "algorithm"),
        distance=int(_number(event.distance, "distance")),
        inliers=(None if event.inliers is None else int(_number(event.inliers, "inliers"))),
        second=_number(event.second, "second", optional=True),
        image_url=url_value(event.image_url, "image_url"),
        page_url=url_value(event.page_url, "page_url"), site=site_value(event.site),
        sha256=_matching(_SHA256, event.sha256, "sha256"),
        media_type=_matching(_MEDIA_TYPE, event.media_type, "media_type"),
        server_ip=ip_value(event.server_ip), headers=headers_value(event.headers),
        store_key=store_key,
        manifest_url=optional_url_value(event.manifest_url, "manifest_url"),
        segment_start=_number(event.segment_start, "segment_start", optional=True),
    )


@dataclasses.dataclass
class IntakeReport:
    """What one batch of match events became."""

    opened: list[int] = dataclasses.field(default_factory=list)
    # The position in the batch of each event that neither opened nor joined a case, and why.
    failed: dict[int, str] = dataclasses.field(default_factory=dict)
    # Sites whose notice could not be (re)drafted, and why.
    drafts_failed: dict[str, str] = dataclasses.field(default_factory=dict)


class CaseStore:
    """Opens, reads and rejects cases."""

    def __init__(self, engine: Engine, store: ObjectStore | None = None,
                 clock: Clock = system_clock) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        self.drafter = NoticeDrafter(engine)

    @classmethod
    def open(cls, url: str | None = None, store: ObjectStore | None = None,
             clock: Clock = system_clock) -> CaseStore:
        from takedown.database import takedown_engine

        return cls(takedown_engine(url), store, clock)

    def open_cases(self, events: list[MatchEvent]) -> list[int]:
        """Open or join a case per event, then redraft the hosts' notices; new case ids.
        Events and notices that fail are logged and left out (`intake` says which)."""
        return self.intake(events).opened

    def intake(self, events: list[MatchEvent]) -> IntakeReport:
        """Open or join a case per event, each in its own transaction, then redraft the notice
        of every site with a new or not yet drafted case, each in its own.

        Raises only when the database itself does not answer: that is no event's fault, and
        the caller should try the whole batch again later.
        """
        report = IntakeReport()
        at = self.clock()
        to_draft: set[str] = set()
        for index, event in enumerate(events):
            try:
                checked = checked_event(event)
                with self.engine.begin() as conn:
                    case_id, undrafted = self._open_case(conn, checked, at)
            except Exception as exc:
                if not isinstance(exc, UnsafeValue) and not self.database_answers():
                    raise
                report.failed[index] = failure_text(exc)
                log.warning("match event %d of %d (%s) opens no case: %s", index + 1,
                            len(events), bounded(str(event.image_url), 200),
                            report.failed[index])
                continue
            if case_id is not None:
                report.opened.append(case_id)
            if undrafted:
                to_draft.add(checked.site)
        for site in sorted(to_draft):
            error = self.redraft(site, at)
            if error is not None:
                report.drafts_failed[site] = error
        return report

    def _open_case(self, conn: Any, event: MatchEvent, at: dt.datetime
                   ) -> tuple[int | None, bool]:
        """(the new case's id or None, whether the site's notice must be drafted)."""
        if conn.execute(select(false_matches.c.id).where(
                false_matches.c.victim == event.victim,
                false_matches.c.sha256 == event.sha256)).first():
            return None, False
        key = url_key(event.image_url)
        signal = {"algorithm": event.algorithm, "distance": event.distance,
                  "second": event.second}
        if event.inliers is not None:
            signal["inliers"] = event.inliers
        current = conn.execute(select(
            cases.c.id, cases.c.signals, cases.c.status, cases.c.sha256, cases.c.evidence_key,
        ).where(
            cases.c.victim == event.victim, cases.c.image_url_sha256 == key,
            cases.c.image_url == event.image_url, cases.c.status.in_(OPEN))).first()
        if current is not None:
            if signal not in current.signals:
                conn.execute(cases.update().where(cases.c.id == current.id),
                             [{"signals": [*current.signals, signal]}])
            # A re-crawl stored the file in the clear again: sealed again (and a case opened
            # before the evidence key was set gets its copy now, if this is its file).
            self._keep_evidence(conn, current.id, event.store_key, current.evidence_key,
                                same_file=current.sha256 == event.sha256)
            # A case whose notice failed to draft last time is drafted now.
            return None, current.status == "detected"
        removed = conn.execute(select(cases.c.id).where(
            cases.c.victim == event.victim, cases.c.status == "removed",
            or_(cases.c.image_url_sha256 == key, cases.c.sha256 == event.sha256),
        ).order_by(cases.c.id.desc()).limit(1)).scalar()
        result = conn.execute(cases.insert(), [{
            "victim": event.victim, "image_url": event.image_url, "image_url_sha256": key,
            "page_url": event.page_url, "site": event.site,
            "algorithm": event.algorithm, "distance": event.distance,
            "second": event.second, "sha256": event.sha256,
            "media_type": event.media_type, "server_ip": event.server_ip,
            "headers": event.headers, "store_key": event.store_key,
            "fetched_at": event.fetched_at, "detected_at": event.detected_at,
            "status": "detected", "status_at": at, "signals": [signal],
            "reupload_of": removed, "sent_count": 0,
            "manifest_url": event.manifest_url, "segment_start": event.segment_start,
        }])
        case_id = int(result.inserted_primary_key[0])
        # The evidence copy (an upload to S3 in cluster mode) is made before the first audit
        # append, which holds the audit log's head until this transaction ends.
        self._keep_evidence(conn, case_id, event.store_key)
        audit.append(conn, actor="matcher", action="case:opened", at=at,
                     case_id=case_id, detail={"event": event.to_json()})
        if removed is not None:
            transition(conn, removed, "reuploaded", actor="matcher", at=at,
                       detail={"new_case": case_id})
        return case_id, True

    def _keep_evidence(self, conn: Any, case_id: int, store_key: str | None,
                       kept: str | None = None, same_file: bool = True) -> str | None:
        """The case's encrypted evidence copy of the file under `store_key`, made when the case
        has none (`kept`) and the file is the case's own; the media copy sealed either way, so
        that no matched file stays in the clear beside an encrypted case
        (takedown/evidence.py). The key of the copy made here, or None."""
        if self.store is None:
            return None
        if kept is None and same_file:
            evidence = keep_encrypted_copy(self.store, store_key, case_id)
            if evidence:
                conn.execute(cases.update().where(cases.c.id == case_id),
                             [{"evidence_key": evidence}])
            return evidence
        seal_media_copy(self.store, store_key)
        return None

    def seal_earlier(self) -> dict[str, int]:
        """Once HAECHI_EVIDENCE_KEY is set: give every case opened before it its encrypted
        evidence copy and seal its media copy, so no matched file stays in the clear until a
        re-crawl happens to meet it again. Safe to run again (each step is done once). Counts:
        `copied` evidence copies made, `sealed` cases whose media copy is sealed now,
        `missing` cases whose stored file is gone (nothing left to seal or copy)."""
        if media_cipher() is None:
            raise SealedMediaError(f"{KEY_VARIABLE} is not set: there is no key to seal with")
        counts = {"copied": 0, "sealed": 0, "missing": 0}
        if self.store is None:
            return counts
        with self.engine.connect() as conn:
            rows = conn.execute(select(cases.c.id, cases.c.store_key, cases.c.evidence_key)
                                .where(cases.c.store_key.is_not(None))
                                .order_by(cases.c.id)).all()
        for row in rows:
            if not (self.store.exists(row.store_key)
                    or self.store.exists(sealed_key(row.store_key))):
                counts["missing"] += 1
                continue
            with self.engine.begin() as conn:
                evidence = self._keep_evidence(conn, row.id, row.store_key, row.evidence_key)
                if evidence:
                    audit.append(conn, actor="system", action="evidence:sealed",
                                 at=self.clock(), case_id=row.id,
                                 detail={"evidence_key": evidence})
                    counts["copied"] += 1
            counts["sealed"] += not self.store.exists(row.store_key)
        return counts

    def rekey(self) -> dict[str, int]:
        """After a new key is put first in HAECHI_EVIDENCE_KEY: re-encrypt every evidence copy
        and sealed media copy under it, so the old keys can be dropped. Counts `evidence` and
        `media` copies rewritten; one that no key opens raises (SealedMediaError) before
        anything else is written for it."""
        counts = {"evidence": 0, "media": 0}
        if self.store is None:
            return counts
        with self.engine.connect() as conn:
            rows = conn.execute(select(cases.c.store_key, cases.c.evidence_key)
                                .order_by(cases.c.id)).all()
        evidence = evidence_store(self.store)
        for key in dict.fromkeys(row.evidence_key for row in rows if row.evidence_key):
            counts["evidence"] += rekeyed(evidence, key)
        for key in dict.fromkeys(row.store_key for row in rows if row.store_key):
            counts["media"] += rekeyed(self.store, sealed_key(key))
        with self.engine.begin() as conn:
            audit.append(conn, actor="system", action="evidence:rekeyed", at=self.clock(),
                         detail=counts)
        return counts

    def redraft(self, site: str, at: dt.datetime, actor: str = "system") -> str | None:
        """Bring the site's draft notice up to date in a transaction of its own; None, or why
        it could not be (then logged and written to the audit log as notice:draft-failed)."""
        try:
            with self.engine.begin() as conn:
                self.drafter.draft_for_site(conn, site, at, actor=actor)
            return None
        except Exception as exc:
            if not self.database_answers():
                raise
            error = failure_text(exc)
        log.error("the notice for %s could not be drafted (its cases stay detected): %s",
                  site, error)
        with self.engine.begin() as conn:
            audit.append(conn, actor=actor, action="notice:draft-failed", at=at,
                         detail={"site": site, "error": error})
        return error

    def database_answers(self) -> bool:
        """Whether the database takes a query at all: tells a failing value from an outage."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def reject_false_match(self, case_id: int, reviewer: str) -> None:
        """The reviewer says this is not the victim: close it and never raise the pair again."""
        at = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(cases).where(cases.c.id == case_id)).mappings().one()
            # A site notice not sent yet no longer names it (its X-ARF, its case list); one
            # approved is a draft again, since what its reviewer approved listed the case.
            unsent = conn.execute(select(notices.c.id, notices.c.status).where(
                notices.c.id == row["notice_id"],
                notices.c.status.in_(("draft", "approved")))).first()
            detached = {"notice_id": None} if unsent is not None else {}
            transition(conn, case_id, "rejected", actor=reviewer, at=at,
                       detail={"reason": "false match"}, **detached)
            if unsent is not None and unsent.status == "approved":
                reopen(conn, unsent.id, reviewer, at, "a case left the notice")
            exists = conn.execute(select(false_matches.c.id).where(
                false_matches.c.victim == row["victim"],
                false_matches.c.sha256 == row["sha256"])).first()
            if exists is None:
                conn.execute(false_matches.insert(), [{
                    "victim": row["victim"], "sha256": row["sha256"], "decided_by": reviewer,
                    "decided_at": at}])
            self.drafter.draft_for_site(conn, row["site"], at, actor=reviewer)
            # Nor does a rung's notice not sent yet name it to a host, CDN or registrar.
            drop_case(conn, case_id, at, reviewer, self.drafter.reporter)

    def list(self, statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        query = select(cases).order_by(cases.c.id)
        if statuses:
            query = query.where(cases.c.status.in_(statuses))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [case_json(row) for row in rows]

    def get(self, case_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(cases).where(cases.c.id == case_id)).mappings().first()
        if row is None:
            return None
        full = case_json(row, tuple(c.name for c in cases.columns))
        stream = stream_of(row)
        if stream is not None:
            full["stream"] = stream
        return full

    def count_open(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(cases).where(
                cases.c.status.in_(OPEN))).scalar_one()
