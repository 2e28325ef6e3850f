"""Streaming video (HLS and DASH): from a manifest to the few segments worth fetching.

Tube sites do not serve one mp4; their players fetch a manifest (`.m3u8` for HLS, `.mpd` for
DASH) that names variants by resolution, and each variant's media is cut into segments of a
few seconds. A victim's picture may be on screen for seconds anywhere in an hour of video, and
fetching all of it for every video of 20,000 sites is out of the question. So: one variant (the
lowest that is still at least MIN_HEIGHT lines, where a face and a body are still plain to the
hashes; the highest below that if none reaches it), and SAMPLE_SEGMENTS segments spread evenly
over the whole duration, first and last included, within a byte budget per video. The frames of
each sampled segment are matched as an mp4's are, and a case names the segment and its second.

Parsing only: no fetching here. HLS through the `m3u8` library; DASH MPDs with lxml (Scrapy's
own parser), covering SegmentTemplate (numbered or with a SegmentTimeline), SegmentList and a
single BaseURL per representation. AES-128 HLS segments are decrypted once their key is
fetched (`decrypt_segment`). Every manifest is hostile input: sizes, counts and numbers bounded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

# Lines of the variant chosen: the lowest at or above this (240p).
MIN_HEIGHT = 240
# Segments fetched per video, spread over its duration.
SAMPLE_SEGMENTS = 6
# A manifest larger than this is not read (a real one of a 10-hour stream is a few hundred KB).
MAX_MANIFEST_BYTES = 4 << 20
# Segments considered per variant (a live stream's window or a very long VOD): beyond this
# the tail is cut, which still samples the first hours evenly.
MAX_SEGMENTS = 100_000
HLS, DASH = "hls", "dash"
_AES_BLOCK = 16


class ManifestError(ValueError):
    """A manifest that cannot be used (not one, unreadable, nothing playable); says why."""


@dataclass(frozen=True)
class Variant:
    url: str
    height: int | None
    bandwidth: int | None


@dataclass(frozen=True)
class SegmentKey:
    """An HLS EXT-X-KEY: the key's URL and IV (None: the segment's sequence number)."""

    url: str
    iv: bytes | None


@dataclass(frozen=True)
class Segment:
    url: str
    start: float  # seconds from the start of the video
    duration: float
    sequence: int
    key: SegmentKey | None = None
    # fMP4 (DASH, HLS EXT-X-MAP): the initialisation segment to put in front of the segment.
    init: str | None = None


@dataclass
class MediaPlaylist:
    """The segments of one variant, in order."""

    segments: list[Segment] = field(default_factory=list)
    live: bool = False  # no end: a live stream's current window

    @property
    def duration(self) -> float:
        return sum(segment.duration for segment in self.segments)


def manifest_kind(url: str, body: bytes) -> str | None:
    """HLS or DASH when `body` is such a manifest (by its bytes; the URL only helps)."""
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"#EXTM3U"):
        return HLS
    if b"<MPD" in body[:4096] and (b"urn:mpeg:dash" in body[:4096]
                                   or url.split("?")[0].lower().endswith(".mpd")):
        return DASH
    return None


def _text(body: bytes) -> str:
    if len(body) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest of {len(body)} bytes, over {MAX_MANIFEST_BYTES}")
    return body.decode("utf-8", "replace")


# --- choosing ----------------------------------------------------------------------------

def choose_variant(variants: list[Variant]) -> Variant:
    """The lowest variant of at least MIN_HEIGHT lines, else the highest there is (by height,
    then bandwidth where heights are not given)."""
    if not variants:
        raise ManifestError("the manifest names no variant")

    def size(variant: Variant) -> tuple[int, int]:
        return (variant.height or 0, variant.bandwidth or 0)

    tall = [v for v in variants if (v.height or 0) >= MIN_HEIGHT]
    if tall:
        return min(tall, key=size)
    if all(v.height is None for v in variants):
        # No resolutions given: the middle bandwidth is the safest guess at 240p-480p.
        ordered = sorted(variants, key=size)
        return ordered[len(ordered) // 2]
    return max(variants, key=size)


def sample(playlist: MediaPlaylist, count: int = SAMPLE_SEGMENTS) -> list[Segment]:
    """`count` segments spread evenly over the playlist's duration, first and last included."""
    segments = playlist.segments
    if len(segments) <= count:
        return list(segments)
    if count == 1:
        return [segments[0]]
    picks = sorted({round(i * (len(segments) - 1) / (count - 1)) for i in range(count)})
    return [segments[i] for i in picks]


# --- HLS ---------------------------------------------------------------------------------

def hls_variants(body: bytes, url: str) -> list[Variant] | None:
    """The variants of a master playlist; None when it is a media playlist already."""
    import m3u8

    try:
        playlist = m3u8.loads(_text(body), uri=url)
    except ManifestError:
        raise
    except Exception as exc:  # the library raises what it likes on hostile text
        raise ManifestError(f"unreadable HLS playlist: {type(exc).__name__}: {exc}") from None
    if not playlist.is_variant:
        return None
    variants = []
    for item in playlist.playlists[:1000]:
        info = item.stream_info
        height = info.resolution[1] if info and info.resolution else None
        variants.append(Variant(urljoin(url, item.uri), height,
                                info.bandwidth if info else None))
    return variants


def hls_segments(body: bytes, url: str) -> MediaPlaylist:
    """The segments of an HLS media playlist."""
    import m3u8

    try:
        playlist = m3u8.loads(_text(body), uri=url)
    except ManifestError:
        raise
    except Exception as exc:
        raise ManifestError(f"unreadable HLS playlist: {type(exc).__name__}: {exc}") from None
    if playlist.is_variant:
        raise ManifestError("a master playlist where a media playlist was expected")
    result = MediaPlaylist(live=not playlist.is_endlist)
    start = 0.0
    first = int(playlist.media_sequence or 0)
    for number, item in enumerate(playlist.segments[:MAX_SEGMENTS]):
        duration = _seconds(item.duration)
        key = None
        if item.key is not None and item.key.method and item.key.method != "NONE":
            if item.key.method != "AES-128":
                raise ManifestError(f"segments encrypted with {item.key.method}, which cannot "
                                    "be read (only AES-128)")
            key = SegmentKey(urljoin(url, item.key.uri), _iv(item.key.iv))
        init = urljoin(url, item.init_section.uri) if item.init_section is not None else None
        result.segments.append(Segment(urljoin(url, item.uri), start, duration, first + number,
                                       key, init))
        start += duration
    if not result.segments:
        raise ManifestError("the HLS playlist has no segments")
    return result


def _seconds(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return seconds if math.isfinite(seconds) and 0 <= seconds < 86_400 else 0.0


def _iv(text: str | None) -> bytes | None:
    if not text:
        return None
    digits = text[2:] if text.lower().startswith("0x") else text
    try:
        value = bytes.fromhex(digits.rjust(32, "0"))
    except ValueError as exc:
        raise ManifestError(f"an EXT-X-KEY IV that is no hex number: {text[:40]!r}") from exc
    if len(value) != _AES_BLOCK:
        raise ManifestError("an EXT-X-KEY IV longer than 16 bytes")
    return value


def decrypt_segment(data: bytes, key: bytes, segment: Segment) -> bytes:
    """An AES-128 (CBC, PKCS#7) HLS segment in the clear; ManifestError when it is not one."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if len(key) != _AES_BLOCK:
        raise ManifestError(f"an HLS key of {len(key)} bytes (AES-128 keys are 16)")
    if not data or len(data) % _AES_BLOCK:
        raise ManifestError("an encrypted segment whose length is no multiple of 16")
    iv = (segment.key.iv if segment.key and segment.key.iv
          else segment.sequence.to_bytes(_AES_BLOCK, "big"))
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise ManifestError("the segment does not decrypt with its key") from exc


# --- DASH --------------------------------------------------------------------------------

_DURATION = re.compile(r"^P(?:(?P<d>[\d.]+)D)?(?:T(?:(?P<h>[\d.]+)H)?(?:(?P<m>[\d.]+)M)?"
                       r"(?:(?P<s>[\d.]+)S)?)?$")
_TEMPLATE_FIELD = re.compile(r"\$(RepresentationID|Number|Time|Bandwidth)(?:%0(\d{1,2})d)?\$")


def _iso_duration(text: str | None) -> float:
    match = _DURATION.match((text or "").strip())
    if not match:
        return 0.0
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return _seconds(parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600
                    + parts.get("m", 0) * 60 + parts.get("s", 0))


def _local(element) -> str:
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def _children(element, name: str) -> list:
    return [child for child in element if _local(child) == name]


def _int(value: str | None, default: int = 0) -> int:
    try:
        number = int(value or default)
    except ValueError:
        return default
    return number if 0 <= number < 2**53 else default


def _base(url: str, element) -> str:
    for child in _children(element, "BaseURL"):
        if child.text and child.text.strip():
            return urljoin(url, child.text.strip())
    return url


def _fill(template: str, representation: str, number: int, time: int, bandwidth: int) -> str:
    values = {"RepresentationID": representation, "Number": number, "Time": time,
              "Bandwidth": bandwidth}

    def replace(match: re.Match) -> str:
        value = values[match.group(1)]
        width = match.group(2)
        return f"{value:0{int(width)}d}" if width and isinstance(value, int) else str(value)

    return _TEMPLATE_FIELD.sub(replace, template).replace("$$", "$")


def _dash_tree(body: bytes):
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             load_dtd=False)
    try:
        return etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise ManifestError(f"unreadable DASH manifest: {exc}") from None


def _video_representations(root) -> list[tuple[Any, Any, Any]]:
    """(period, adaptation set, representation) of every video representation."""
    found = []
    for period in _children(root, "Period")[:100]:
        for adaptation in _children(period, "AdaptationSet")[:100]:
            kind = (adaptation.get("contentType") or adaptation.get("mimeType") or "").lower()
            for representation in _children(adaptation, "Representation")[:100]:
                mime = (representation.get("mimeType") or kind).lower()
                if "video" in mime or "video" in kind or (
                        not kind and representation.get("height")):
                    found.append((period, adaptation, representation))
    return found


def dash_variants(body: bytes, url: str) -> list[Variant]:
    """The video representations of an MPD, as variants named by their id."""
    root = _dash_tree(body if len(body) <= MAX_MANIFEST_BYTES else b"")
    return [Variant(f"{url}#{representation.get('id') or index}",
                    _int(representation.get("height")) or None,
                    _int(representation.get("bandwidth")) or None)
            for index, (_, _, representation) in enumerate(_video_representations(root))]


def dash_segments(body: bytes, url: str, variant: Variant) -> MediaPlaylist:
    """The segments of the representation `variant` names (from dash_variants)."""
    if len(body) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest of {len(body)} bytes, over {MAX_MANIFEST_BYTES}")
    root = _dash_tree(body)
    wanted = variant.url.rsplit("#", 1)[-1]
    found = next((triple for index, triple in enumerate(_video_representations(root))
                  if (triple[2].get("id") or str(index)) == wanted), None)
    if found is None:
        raise ManifestError(f"no representation {wanted!r} in the manifest")
    period, adaptation, representation = found
    base = _base(_base(_base(_base(url, root), period), adaptation), representation)
    total = _iso_duration(period.get("duration")) or _iso_duration(
        root.get("mediaPresentationDuration"))
    template = (_children(representation, "SegmentTemplate")
                or _children(adaptation, "SegmentTemplate"))
    rep_id, bandwidth = representation.get("id") or "", _int(representation.get("bandwidth"))
    playlist = MediaPlaylist(live=(root.get("type") or "").lower() == "dynamic")
    if template:
        node = template[0]
        scale = _int(node.get("timescale"), 1) or 1
        number = _int(node.get("startNumber"), 1)
        init = node.get("initialization")
        init_url = urljoin(base, _fill(init, rep_id, 0, 0, bandwidth)) if init else None
        media = node.get("media") or ""
        timeline = _children(node, "SegmentTimeline")
        spans: list[tuple[int, int]] = []  # (start time, duration) in timescale units
        if timeline:
            time = 0
            for entry in _children(timeline[0], "S"):
                time = _int(entry.get("t"), time)
                length = _int(entry.get("d"))
                room = MAX_SEGMENTS - len(spans)
                for _ in range(min(_int(entry.get("r")) + 1, room)):
                    spans.append((time, length))
                    time += length
        else:
            length = _int(node.get("duration"))
            if not length:
                raise ManifestError("a SegmentTemplate with neither a duration nor a timeline")
            count = min(math.ceil(total * scale / length) if total else 1, MAX_SEGMENTS)
            spans = [(i * length, length) for i in range(count)]
        for offset, (time, length) in enumerate(spans):
            playlist.segments.append(Segment(
                urljoin(base, _fill(media, rep_id, number + offset, time, bandwidth)),
                time / scale, length / scale, number + offset, init=init_url))
    else:
        listed = (_children(representation, "SegmentList")
                  or _children(adaptation, "SegmentList"))
        if listed:
            node = listed[0]
            scale = _int(node.get("timescale"), 1) or 1
            length = _int(node.get("duration")) / scale
            init_nodes = _children(node, "Initialization")
            init_url = (urljoin(base, init_nodes[0].get("sourceURL"))
                        if init_nodes and init_nodes[0].get("sourceURL") else None)
            for offset, entry in enumerate(_children(node, "SegmentURL")[:MAX_SEGMENTS]):
                if entry.get("media"):
                    playlist.segments.append(Segment(urljoin(base, entry.get("media")),
                                                     offset * length, length, offset,
                                                     init=init_url))
        elif base != url:  # one file for the whole representation
            playlist.segments.append(Segment(base, 0.0, total, 0))
    if not playlist.segments:
        raise ManifestError("the DASH representation has no segments")
    return playlist
