"""Every media format today's sites serve reaches the hashes: AVIF, HEIC, animated WebP, GIF and
APNG (their frames sampled in time like a video's), MPEG-TS and fragmented-MP4 segments; and
hostile or broken files of each are refused with a sentence, within the decode budgets."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
from pathlib import Path

import av
import pillow_heif
import pytest
from PIL import Image

from engines.media import sniff_media
from matcher.decode import UnreadableImage, sniff_format
from matcher.hasher import ImageHasher
from matcher.match import Matcher
from matcher.signals import SIGNAL_TYPES
from matcher.video import MAX_ANIMATION_FRAMES, stills
from testkit.synthetic import synthetic_picture

pdq = SIGNAL_TYPES["pdq"]
# Re-encoding in a lossy format moves a few PDQ bits of 256; a different picture is over 100
# bits away. GIF's 256 dithered colours move the most (up to 24 here): a GIF is held to the
# match threshold itself, the other formats to half of it.
CLOSE = pdq.threshold // 2
CLOSE_GIF = pdq.threshold
SIZE = (256, 192)


def pdq_distance(a: Image.Image, b: Image.Image) -> int:
    return pdq.distance(pdq.hash_image(a).code, pdq.hash_image(b).code)


def close(fmt: str) -> int:
    return CLOSE_GIF if fmt == "GIF" else CLOSE


def saved(picture: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    if fmt == "HEIC":  # pillow-heif writes it without being registered as Pillow's opener
        pillow_heif.from_pillow(picture).save(buffer, quality=90)
    else:
        picture.save(buffer, fmt, **options)
    return buffer.getvalue()


def animated(frames: list[Image.Image], fmt: str, duration: int | list[int] = 1000) -> bytes:
    return saved(frames[0], fmt, save_all=True, append_images=frames[1:], duration=duration,
                 loop=0)


def assert_sentence(exc: pytest.ExceptionInfo[UnreadableImage]) -> str:
    message = str(exc.value)
    assert len(message.split()) >= 4 and "\n" not in message, message
    return message


def with_size(data: bytes, width: int, height: int) -> bytes:
    """An AVIF or HEIC file whose `ispe` boxes (the picture's size) claim `width` x `height`."""
    out, at = bytearray(data), 0
    while (at := out.find(b"ispe", at)) >= 0:
        out[at + 8:at + 16] = struct.pack(">II", width, height)
        at += 4
    return bytes(out)


def gif_of_pixels(frames: int, canvas: tuple[int, int] = (1, 1)) -> bytes:
    """A GIF of `frames` one-pixel frames (black for ten, then white for ten...) on `canvas`,
    each with no duration: what a hostile file looks like, a few bytes a frame."""
    head = (b"GIF89a" + struct.pack("<HH", *canvas) + b"\x80\x00\x00"
            + b"\x00\x00\x00\xff\xff\xff")
    pixel = {0: b"\x02\x02\x44\x01\x00", 1: b"\x02\x02\x4c\x01\x00"}  # LZW of index 0, 1
    frame = {c: b"\x21\xf9\x04\x00\x00\x00\x00\x00\x2c" + struct.pack("<HHHH", 0, 0, 1, 1)
             + b"\x00" + pixel[c] for c in (0, 1)}
    return head + b"".join(frame[(i // 10) % 2] for i in range(frames)) + b";"


# --- pictures of one frame ---------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "sniffed"), [
    ("JPEG", "jpeg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("AVIF", "avif"),
    ("HEIC", "heic"), ("TIFF", "tiff"), ("BMP", "bmp")])
def test_each_format_decodes_to_one_picture_that_hashes_like_the_original(fmt, sniffed) -> None:
    picture = synthetic_picture(21, SIZE)
    data = saved(picture, fmt)
    assert sniff_format(data) == sniffed
    assert sniff_media(data).mime == f"image/{sniffed}"
    (only,) = stills(data)
    assert only.second is None and only.image.size == SIZE and only.image.mode == "RGB"
    assert pdq_distance(only.image, picture) <= close(fmt)


def test_heic_is_read_in_a_fresh_process_without_anyone_registering_a_reader(tmp_path) -> None:
    path = tmp_path / "photo.heic"
    path.write_bytes(saved(synthetic_picture(22, SIZE), "HEIC"))
    script = ("import sys; from pathlib import Path; from matcher.video import stills; "
              "(s,) = stills(Path(sys.argv[1]).read_bytes()); print(s.second, *s.image.size)")
    run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert run.stdout.split() == ["None", "256", "192"], run.stderr


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + bytes(64)


@pytest.mark.parametrize(("head", "mime"), [
    (ftyp(b"avif", b"mif1", b"miaf"), "image/avif"),
    (ftyp(b"avis", b"avif", b"msf1"), "image/avif"),
    (ftyp(b"mif1", b"avif", b"miaf"), "image/avif"),
    (ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
    (ftyp(b"heix", b"mif1"), "image/heic"),
    (ftyp(b"mif1", b"heic"), "image/heic"),
    (ftyp(b"msf1", b"hevc"), "image/heic"),
    (ftyp(b"isom", b"iso2", b"avc1"), "video/mp4"),
    (ftyp(b"mp42", b"isom"), "video/mp4"),
    (ftyp(b"qt  "), "video/quicktime"),
    (ftyp(b"iso5", b"iso6", b"mp41"), "video/mp4"),  # FFmpeg's fragmented MP4
    (ftyp(b"iso6", b"cmfc"), "video/mp4"),
    (ftyp(b"dash", b"iso6"), "video/mp4"),
    (ftyp(b"msdh", b"msix"), "video/mp4"),
    (b"\x00\x00\x00\x18styp" + b"msdhmsix" + bytes(64), "video/mp4"),  # a CMAF segment
    (b"\x00\x00\x05\x00moof\x00\x00\x00\x10mfhd" + bytes(64), "video/mp4"),  # a DASH segment
    (b"<h1>free pictures</h1>" * 4, None),  # text, whatever its fifth to eighth bytes say
])
def test_iso_media_brands_tell_pictures_from_video(head, mime) -> None:
    media = sniff_media(head)
    assert (media.mime if media else None) == mime


# --- animated pictures -------------------------------------------------------------------------

ANIMATED = ["GIF", "WEBP", "PNG", "AVIF"]  # PNG with several frames is APNG


@pytest.mark.parametrize("fmt", ANIMATED)
def test_an_animation_whose_victim_is_its_fourth_frame_yields_that_frame_at_second_3(fmt) -> None:
    scene, victim = synthetic_picture(30, SIZE), synthetic_picture(31, SIZE)
    data = animated([scene, scene, scene, victim, scene], fmt)
    found = list(stills(data))
    # One still per second of the five, the repeats of the scene dropped.
    assert [still.second for still in found] == [0.0, 3.0, 4.0]
    at_three = found[1].image
    assert pdq_distance(at_three, victim) <= close(fmt) < pdq_distance(at_three, scene)
    assert pdq_distance(found[0].image, scene) <= close(fmt)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_frames_without_a_duration_last_100_ms_and_are_sampled_once_a_second(fmt) -> None:
    moving = [synthetic_picture(40 + i, (64, 48)) for i in range(25)]  # every frame different
    assert [still.second for still in stills(animated(moving, fmt, duration=0))] == [
        0.0, 1.0, 2.0]


def test_a_long_frame_starting_between_samples_is_the_one_on_screen_at_the_next() -> None:
    first, flash, held = (synthetic_picture(s, SIZE) for s in (50, 51, 52))
    # 0-2.5 s first, 2.5-2.6 s a flash, then the held frame to 5.6 s: at second 3 the held
    # frame is on screen, though it began before it; the flash is never on screen at a second.
    found = list(stills(animated([first, flash, held], "WEBP", duration=[2500, 100, 3000])))
    assert [still.second for still in found] == [0.0, 2.6]
    assert pdq_distance(found[1].image, held) <= CLOSE


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_every_slide_of_a_half_second_slideshow_is_a_still(fmt) -> None:
    slides = [synthetic_picture(s, SIZE) for s in (53, 54, 55, 56, 57)]
    found = list(stills(animated(slides, fmt, duration=500)))
    # The slide at 1.5 s is on screen at no whole second, but it is held for half a second.
    assert [still.second for still in found] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert pdq_distance(found[3].image, slides[3]) <= close(fmt)


def test_an_apng_default_image_outside_its_animation_is_a_still_too() -> None:
    # Viewers without APNG show the default image; APNG viewers play the frames after it.
    shown_without_apng, scene = synthetic_picture(58, SIZE), synthetic_picture(59, SIZE)
    data = saved(shown_without_apng, "PNG", save_all=True, default_image=True,
                 append_images=[scene, scene.transpose(Image.Transpose.FLIP_TOP_BOTTOM)],
                 duration=[1000, 1000])  # the animation's frames only
    found = list(stills(data))
    assert [still.second for still in found] == [0.0, 0.0, 1.0]
    assert pdq_distance(found[0].image, shown_without_apng) <= CLOSE
    assert pdq_distance(found[1].image, scene) <= CLOSE


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_a_still_scene_of_many_short_frames_collapses_to_one_still(fmt) -> None:
    def jittered(picture: Image.Image, index: int) -> Image.Image:
        # One pixel moved per frame: a still scene, but not frames the saver would merge.
        frame = picture.copy()
        frame.putpixel((index, 0), (255, 255, 255))
        return frame

    one, two = synthetic_picture(60, (96, 72)), synthetic_picture(61, (96, 72))
    frames = [jittered(one, i) for i in range(25)] + [jittered(two, i) for i in range(25)]
    # 2.5 s of each scene at 100 ms a frame: the samples at 0 and 3 s, not one a second.
    assert [still.second for still in stills(animated(frames, fmt, duration=100))] == [0.0, 3.0]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_a_single_frame_picture_saved_as_an_animation_is_one_picture(fmt) -> None:
    picture = synthetic_picture(62, (96, 72))
    (only,) = stills(saved(picture, fmt, save_all=True, duration=500))
    assert only.second is None


def test_a_registered_victim_is_matched_in_an_animated_webp_and_the_case_says_when(bank) -> None:
    victim = synthetic_picture(70, SIZE)
    hasher = ImageHasher()
    bank.add("V-anim", hasher.registration_hashes(saved(victim, "JPEG")), source="photo.jpg")
    scenes = [synthetic_picture(71, SIZE), synthetic_picture(72, SIZE)]
    copy = victim.resize((200, 150)).resize(SIZE)  # a re-scaled copy, not the file registered
    data = animated([scenes[0], scenes[1], scenes[0], copy, scenes[1]], "WEBP")
    matches = Matcher(bank, hasher).match_bytes(data)
    assert {m.victim for m in matches} == {"V-anim"}
    assert all(m.second == 3.0 for m in matches)


# --- hostile and broken files ------------------------------------------------------------------

def test_a_hundred_thousand_one_pixel_frames_stop_at_the_frame_cap_in_little_time() -> None:
    data = gif_of_pixels(100_000)
    started = time.monotonic()
    found = list(stills(data))
    assert time.monotonic() - started < 20
    # Ten frames a second, every tenth sampled, black and white in turn: all distinct, and none
    # from beyond the cap on frames decoded.
    assert len(found) == MAX_ANIMATION_FRAMES // 10
    assert found[-1].second < MAX_ANIMATION_FRAMES / 10


def test_a_huge_canvas_of_many_frames_is_refused_before_decoding() -> None:
    with pytest.raises(UnreadableImage, match="decompression bomb") as exc:
        list(stills(gif_of_pixels(10_000, canvas=(6000, 6000))))
    assert_sentence(exc)


def test_decoding_an_animation_stops_at_its_pixel_budget_keeping_the_frames_found(
        monkeypatch) -> None:
    import matcher.video

    frames = [synthetic_picture(80 + i, (64, 48)) for i in range(8)]
    monkeypatch.setattr(matcher.video, "MAX_ANIMATION_PIXELS", 64 * 48 * 3)
    assert [s.second for s in stills(animated(frames, "WEBP"))] == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("fmt", ["AVIF", "HEIC"])
@pytest.mark.parametrize("claimed", [(12_000, 12_000), (9_000, 9_000)],
                         ids=["over-the-pixel-limit", "over-the-memory-limit"])
def test_avif_and_heic_claiming_a_huge_size_are_refused_before_decoding(fmt, claimed) -> None:
    data = with_size(saved(synthetic_picture(90, SIZE), fmt), *claimed)
    with pytest.raises(UnreadableImage, match="decompression bomb") as exc:
        list(stills(data))
    assert_sentence(exc)


@pytest.mark.parametrize("fmt", ["AVIF", "HEIC", "WEBP"])
@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_avif_heic_and_webp_are_clear_errors(fmt, keep) -> None:
    data = saved(synthetic_picture(91, SIZE), fmt)
    with pytest.raises(UnreadableImage, match=f"(?i)truncated or corrupt {fmt}") as exc:
        list(stills(data[: int(len(data) * keep)]))
    assert_sentence(exc)


@pytest.mark.parametrize("fmt", ANIMATED)
def test_truncated_animations_give_the_frames_before_the_damage_or_a_clear_error(fmt) -> None:
    frames = [synthetic_picture(92 + i, SIZE) for i in range(5)]
    data = animated(frames, fmt)
    with pytest.raises(UnreadableImage, match=f"(?i)truncated or corrupt {fmt[:3]}") as exc:
        list(stills(data[:80]))
    assert_sentence(exc)
    try:
        found = list(stills(data[: len(data) // 2]))
    except UnreadableImage as error:  # WebP and AVIF index their frames: half a file has none
        assert "truncated or corrupt" in str(error)
    else:  # GIF and APNG are read frame by frame: the first half gives its frames
        assert 1 <= len(found) < 5
        assert pdq_distance(found[0].image, frames[0]) <= close(fmt)


# --- streaming segments ------------------------------------------------------------------------

FPS = 10


def clip(pictures: list[Image.Image], fmt: str, options: dict[str, str] | None = None) -> bytes:
    """Two seconds of each picture, a keyframe every two seconds, as packagers cut."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt, options=options or {}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(2 * FPS), "keyint_min": str(2 * FPS),
                          "sc_threshold": "0"}
        for picture in pictures:
            for _ in range(2 * FPS):
                for packet in stream.encode(av.VideoFrame.from_image(picture)):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def top_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    boxes, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        boxes.append((data[at + 4:at + 8], data[at:at + size]))
        at += size
    return boxes


def test_an_mpeg_ts_segment_decodes_to_frames_through_stills() -> None:
    pictures = [synthetic_picture(s, SIZE) for s in (100, 101, 102)]
    data = clip(pictures, "mpegts")
    assert sniff_media(data).mime == "video/mp2t"
    found = list(stills(data))
    assert [still.second for still in found] == [0.0, 2.0, 4.0]
    assert pdq_distance(found[2].image, pictures[2]) <= CLOSE


def test_an_fmp4_init_segment_with_a_later_media_segment_decodes_to_that_segments_frames(
        ) -> None:
    pictures = [synthetic_picture(s, SIZE) for s in (110, 111, 112)]
    data = clip(pictures, "mp4", {"movflags": "frag_keyframe+empty_moov+default_base_moof"})
    boxes = top_boxes(data)
    init = b"".join(box for kind, box in boxes if kind in (b"ftyp", b"moov"))
    segments = [box + boxes[i + 1][1] for i, (kind, box) in enumerate(boxes) if kind == b"moof"]
    assert len(segments) == 3
    found = list(stills(init + segments[2]))
    assert [still.second for still in found] == [4.0]  # the segment's own time, from its tfdt
    assert pdq_distance(found[0].image, pictures[2]) <= CLOSE
    # A media segment alone is a video, but it cannot be decoded without its init segment.
    assert sniff_media(segments[2]).kind == "video"
    with pytest.raises(UnreadableImage, match="initialisation segment") as exc:
        list(stills(segments[2]))
    assert_sentence(exc)
