"""HLS and DASH manifests as real players get them, down to the segments worth fetching
(issue 14, "streaming video"): variant choice, even sampling, AES-128, and hostile manifests."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from crawler.streaming import (
    DASH,
    HLS,
    MIN_HEIGHT,
    ManifestError,
    MediaPlaylist,
    Segment,
    SegmentKey,
    Variant,
    choose_variant,
    dash_segments,
    dash_variants,
    decrypt_segment,
    hls_segments,
    hls_variants,
    manifest_kind,
    sample,
)

MASTER = b"""#EXTM3U
#EXT-X-VERSION:3
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=2149280,AVERAGE-BANDWIDTH=1800000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000
hls/720p/index.m3u8?token=abc
#EXT-X-STREAM-INF:BANDWIDTH=246440,CODECS="avc1.42c015,mp4a.40.2",RESOLUTION=320x180
hls/180p/index.m3u8?token=abc
#EXT-X-STREAM-INF:BANDWIDTH=460560,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=480x270
hls/270p/index.m3u8?token=abc
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI="hls/iframe.m3u8",RESOLUTION=320x180
"""


def media_playlist(count: int, key: str = "") -> bytes:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:6",
             "#EXT-X-MEDIA-SEQUENCE:100", "#EXT-X-PLAYLIST-TYPE:VOD"]
    if key:
        lines.append(key)
    for n in range(count):
        lines += [f"#EXTINF:{6.006 if n < count - 1 else 2.5},", f"seg-{n:05d}.ts"]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines).encode()


def test_hls_master_gives_the_lowest_variant_of_240p_or_more() -> None:
    url = "https://cdn.tube.example/v/8f3/master.m3u8"
    assert manifest_kind(url, b"\xef\xbb\xbf" + MASTER) == HLS
    variants = hls_variants(MASTER, url)
    chosen = choose_variant(variants)
    assert chosen.height == 270 and chosen.height >= MIN_HEIGHT
    assert chosen.url == "https://cdn.tube.example/v/8f3/hls/270p/index.m3u8?token=abc"
    assert hls_variants(media_playlist(3), url) is None  # a media playlist is no master
    # Only small variants: the largest of them; none sized: the middle bandwidth.
    assert choose_variant([Variant("a", 144, 1), Variant("b", 180, 2)]).url == "b"
    assert choose_variant([Variant(str(b), None, b) for b in (1, 2, 3)]).url == "2"


def test_hls_segments_are_sampled_evenly_over_the_whole_video() -> None:
    url = "https://cdn.tube.example/v/8f3/hls/270p/index.m3u8"
    playlist = hls_segments(media_playlist(600), url)  # an hour in 6 s segments
    assert len(playlist.segments) == 600 and not playlist.live
    assert playlist.duration == pytest.approx(599 * 6.006 + 2.5)
    picked = sample(playlist, 6)
    assert [s.sequence for s in picked] == [100, 220, 340, 459, 579, 699]
    assert picked[0].url == "https://cdn.tube.example/v/8f3/hls/270p/seg-00000.ts"
    assert picked[-1].start == pytest.approx(599 * 6.006)
    assert sample(hls_segments(media_playlist(2), url), 6) == hls_segments(
        media_playlist(2), url).segments


def encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def test_aes_128_segments_decrypt_with_the_sequence_number_or_the_given_iv() -> None:
    key, clear = os.urandom(16), os.urandom(188 * 40)
    playlist = hls_segments(media_playlist(3, '#EXT-X-KEY:METHOD=AES-128,URI="/keys/k1"'),
                            "https://h.example/v/index.m3u8")
    segment = playlist.segments[1]
    assert segment.key == SegmentKey("https://h.example/keys/k1", None)
    iv = segment.sequence.to_bytes(16, "big")  # 101: no IV given, as RFC 8216 5.2 says
    assert decrypt_segment(encrypt(clear, key, iv), key, segment) == clear
    given = hls_segments(media_playlist(
        1, '#EXT-X-KEY:METHOD=AES-128,URI="k",IV=0x000102030405060708090a0b0c0d0e0f'),
        "https://h.example/v/index.m3u8").segments[0]
    assert decrypt_segment(encrypt(clear, key, bytes(range(16))), key, given) == clear
    with pytest.raises(ManifestError, match="does not decrypt"):
        decrypt_segment(encrypt(clear, os.urandom(16), iv), key, segment)
    with pytest.raises(ManifestError, match="SAMPLE-AES"):
        hls_segments(media_playlist(1, '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k"'), "https://h/x")


MPD_TEMPLATE = b"""<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" minBufferTime="PT1.5S"
     mediaPresentationDuration="PT10M0.0S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <BaseURL>https://media.example.net/dash/v77/</BaseURL>
  <Period id="0" start="PT0S">
    <AdaptationSet mimeType="audio/mp4" segmentAlignment="true">
      <Representation id="a0" bandwidth="128000" codecs="mp4a.40.2"/>
    </AdaptationSet>
    <AdaptationSet contentType="video" mimeType="video/mp4" segmentAlignment="true">
      <SegmentTemplate timescale="90000" duration="360000" startNumber="1"
        initialization="$RepresentationID$/init.mp4"
        media="$RepresentationID$/seg-$Number%05d$.m4s"/>
      <Representation id="v1080" bandwidth="4800000" width="1920" height="1080"/>
      <Representation id="v360" bandwidth="900000" width="640" height="360"/>
      <Representation id="v144" bandwidth="150000" width="256" height="144"/>
    </AdaptationSet>
  </Period>
</MPD>"""

MPD_TIMELINE = b"""<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"
     mediaPresentationDuration="PT30S">
  <Period><AdaptationSet contentType="video">
    <Representation id="1" bandwidth="500000" height="480">
      <SegmentTemplate timescale="1000" media="chunk-$Time$.m4s"
                       initialization="init-$Bandwidth$.mp4">
        <SegmentTimeline><S t="0" d="4000" r="5"/><S d="2000"/><S d="4000" r="-0"/>
        </SegmentTimeline>
      </SegmentTemplate>
    </Representation>
  </AdaptationSet></Period>
</MPD>"""


def test_dash_template_numbers_and_timelines_give_segment_urls_and_seconds() -> None:
    url = "https://www.tube.example/watch/77/manifest.mpd"
    assert manifest_kind(url, MPD_TEMPLATE) == DASH
    variants = dash_variants(MPD_TEMPLATE, url)
    assert [v.height for v in variants] == [1080, 360, 144]  # the audio set is no variant
    chosen = choose_variant(variants)
    assert chosen.height == 360
    playlist = dash_segments(MPD_TEMPLATE, url, chosen)
    assert len(playlist.segments) == 150  # 600 s in 4 s segments
    third = playlist.segments[2]
    assert third.url == "https://media.example.net/dash/v77/v360/seg-00003.m4s"
    assert third.init == "https://media.example.net/dash/v77/v360/init.mp4"
    assert third.start == pytest.approx(8.0)

    [only] = dash_variants(MPD_TIMELINE, url)
    timeline = dash_segments(MPD_TIMELINE, url, only)
    assert [s.start for s in timeline.segments] == [0, 4, 8, 12, 16, 20, 24, 26]
    assert timeline.segments[6].url == "https://www.tube.example/watch/77/chunk-24000.m4s"
    assert timeline.segments[0].init == "https://www.tube.example/watch/77/init-500000.mp4"


def test_hostile_manifests_are_errors_not_hangs() -> None:
    with pytest.raises(ManifestError):
        hls_segments(b"#EXTM3U\n#EXT-X-ENDLIST\n", "https://h/x")  # nothing to play
    billion = MPD_TIMELINE.replace(b'r="5"', b'r="1000000000"')
    [only] = dash_variants(billion, "https://h/m.mpd")
    assert len(dash_segments(billion, "https://h/m.mpd", only).segments) <= 100_000
    entity = (b'<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
              b'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><BaseURL>&x;</BaseURL></MPD>')
    assert dash_variants(entity, "https://h/m.mpd") == []  # no file read, nothing to play
    with pytest.raises(ManifestError, match="over"):
        hls_segments(b"#EXTM3U\n" + b"#" * (5 << 20), "https://h/x")
    assert manifest_kind("https://h/x.mpd", b"<html><body>MPD</body></html>") is None
    assert sample(MediaPlaylist([Segment("u", 0, 1, 0)]), 1)[0].url == "u"


def test_segments_as_packagers_cut_them_are_video_by_their_bytes() -> None:
    from engines.media import sniff_media
    from testkit.synthetic import synthetic_picture
    from testkit.testweb import streams

    pictures = [synthetic_picture(seed=s, size=(160, 120)) for s in (1, 2, 3)]
    ts = streams.hls(pictures[0], pictures[1:], (160, 120)).segments[7]
    assert sniff_media(ts).mime == "video/mp2t"
    dash = streams.dash(pictures[0], pictures[1:], (160, 120))
    assert sniff_media(dash.init + dash.segments[7]).kind == "video"
    assert sniff_media(b"\x47" + bytes(100)) is None  # one sync byte is no stream
