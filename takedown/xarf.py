"""X-ARF v4 reports: one JSON report per URL a notice lists, in the form abuse desks' tools
validate, so a desk that checks reports before acting does not drop Haechi's.

The form is the official schema's, vendored at one commit of xarf/xarf-spec in docs/xarf/v4/
(see its README); tests/test_xarf.py validates every kind of report built here against it.

Which type a report has:

- `content`/`csam` (the official types/content-csam.json) when the victim registered as a
  minor at the time the picture was taken (`haechi register --minor-at-capture`, kept in the
  bank's `victims` table, matcher/bank.py). Its required fields: `detection_method` is
  `hash_match`; `classification` is `B2`, the mildest class of the scheme (post-pubescent,
  posing), because Haechi knows the victim was under 18 and the picture intimate, not the
  child's development or what the picture shows. A floor understates nothing the desk must
  act on (every class is removed) and claims nothing Haechi does not know; the desk's own
  reviewers classify further.
- `content`/`ncii` for every other victim: intimate imagery of an adult published without
  consent, which X-ARF has no type for (its content types are phishing, malware, fraud,
  brand infringement, exposed data, remote compromise, suspicious registration, CSAM and
  CSEM; naming the report one of those would route it to the wrong people). `ncii` is
  Haechi's documented extension, docs/xarf-content-ncii.schema.json, built on xarf-core and
  content-base like the official types.

How a validating desk takes `ncii`: the master schema is xarf-core plus an `anyOf` of
`if category/type then types/<file>` branches with no `else`. A branch whose `if` does not
match holds, so a pair the master does not list passes on the core alone: `ncii` does, and
so does `csam` (the master lists only phishing and malware under content; csam's own fields
are checked by its type file). The master therefore accepts both; a desk whose tool picks
the type file by name (types/<category>-<type>.json, as the xarf Python library does) finds
none for `ncii` and checks the core. A desk that refuses any type it has no file for would
refuse `ncii`; no official type says what the report is, so Haechi still sends `ncii`
rather than a wrong one, and the notice's text reaches the desk's people either way.

Fields the vendored core fixes: tags are `namespace:value` of [a-z0-9_] only (the file's
SHA-256 travels in `hash_values`, not in a tag: `hash:sha256:<hex>` has two colons and is
refused); `reporter` is exactly org, contact and type (`automated`); `description` is at
most 1000 characters; `source_identifier` is the server's IP when the crawl recorded one,
else the site's host name (the core takes either). `sender` (org, contact, domain) is kept
for desks reading later drafts of the spec, which require it; the vendored core lets it by.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from takedown.references import reference_of, stream_of

if TYPE_CHECKING:
    import datetime as dt

    from takedown.notices import Reporter

XARF_VERSION = "4.0.0"
CATEGORY = "content"
TYPE_CSAM = "csam"
TYPE_NCII = "ncii"  # Haechi's extension: docs/xarf-content-ncii.schema.json
# The mildest class of content-csam.json's scheme: see the module docstring.
CSAM_FLOOR = "B2"
DETECTION = "hash_match"
# The core caps a description at 1000 characters; a long stream URL must not break it.
DESCRIPTION_CHARS = 1000
# content-base's pattern for `domain` (the site's host name, lowercase A-labels).
DOMAIN = re.compile(r"^([a-z0-9]+(-[a-z0-9]+)*\.)+[a-z]{2,}$")
SHA256 = re.compile(r"^[a-fA-F0-9]{64}$")
# What is not allowed in one half of a tag (the core's `^[a-z0-9_]+:[a-z0-9_]+$`).
TAG_UNSAFE = re.compile(r"[^a-z0-9_]+")


def xarf_reports(rows: list[Any], reporter: Reporter, at: dt.datetime,
                 minors: Collection[str] = frozenset()) -> list[dict[str, Any]]:
    """One X-ARF v4 report per case row; `csam` for rows whose victim is in `minors` (the
    victims registered as minors at capture, matcher.bank.minors_among), `ncii` else."""
    return [report(row, reporter, at, minor=row["victim"] in minors) for row in rows]


def report(row: Mapping[str, Any], reporter: Reporter, at: dt.datetime, minor: bool
           ) -> dict[str, Any]:
    """The X-ARF report of one case (a row of the cases table)."""
    stream = stream_of(row)
    body: dict[str, Any] = {
        "xarf_version": XARF_VERSION,
        # Named by the case, so a reminder repeats the report it reminds of.
        "report_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"haechi:{row['id']}")),
        "timestamp": row["detected_at"].isoformat(),
        "reporter": {"org": reporter.org, "contact": reporter.email, "type": "automated"},
        "sender": {"org": reporter.org, "contact": reporter.email, "domain": reporter.domain},
        "source_identifier": row["server_ip"] or row["site"],
        "category": CATEGORY,
        "type": TYPE_CSAM if minor else TYPE_NCII,
        "url": row["image_url"],
        "evidence_source": "crawler",
        "verified_at": row["fetched_at"].isoformat(),
        "verification_method": "automated_crawler",
        "detection_method": DETECTION,
        "description": _description(row, at, stream, minor),
        "tags": _tags(row, stream),
    }
    if minor:
        body["classification"] = CSAM_FLOOR
    domain = _domain(row["site"])
    if domain:
        body["domain"] = domain
    media = _media_type(row, stream)
    if media:
        body["media_type"] = media
    if SHA256.match(row["sha256"] or ""):
        body["hash_values"] = {"sha256": row["sha256"].lower()}
    if stream:
        body["stream"] = {"manifest_url": stream["manifest_url"], "time": stream["time"]}
    return body


def _description(row: Mapping[str, Any], at: dt.datetime, stream: dict[str, Any] | None,
                 minor: bool) -> str:
    what = ("Intimate image of a person who was a minor when it was taken, published without "
            "consent" if minor else "Intimate image published without consent")
    text = f"{what}; case {reference_of(row['id'])}; notified {at.isoformat()}"
    if stream:
        text += (f"; a segment of the video stream {stream['manifest_url']}, at "
                 f"{stream['time']} of the video")
    if len(text) > DESCRIPTION_CHARS:
        text = text[:DESCRIPTION_CHARS - 1] + "…"
    return text


def tag(namespace: str, value: str) -> str:
    """`namespace:value` as the core's pattern allows: lowercase letters, digits and `_`."""
    def part(text: str) -> str:
        return TAG_UNSAFE.sub("_", text.lower()).strip("_") or "unknown"
    return f"{part(namespace)}:{part(value)}"


def _tags(row: Mapping[str, Any], stream: dict[str, Any] | None) -> list[str]:
    tags = [tag("match", row["algorithm"]), tag("reporter", "haechi")]
    if stream:
        tags.append(tag("media", "stream_segment"))
    return tags


def _domain(site: str) -> str | None:
    """The site's DNS name in content-base's form, or None (an IP address, a port, a name
    that is no domain): the field is optional, a wrong one would fail the report. A name
    with an internationalised label is left out too: content-base's pattern at the vendored
    commit refuses the `xn--` of its A-label (later drafts take A-labels)."""
    host = site.strip().rstrip(".").lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return host if DOMAIN.match(host) else None


def _media_type(row: Mapping[str, Any], stream: dict[str, Any] | None) -> str | None:
    """`image` or `video` (content-csam's enum), by the stored file's type; None if neither."""
    mime = (row.get("media_type") or "").lower()
    if stream or mime.startswith("video/") or row.get("second") is not None:
        return "video"
    if mime.startswith("image/"):
        return "image"
    return None
