"""Videos: registered and matched by frames sampled about once a second, re-encodes included."""

from __future__ import annotations

import io

import av
import pytest
from PIL import Image

from matcher.decode import UnreadableImage, decode_image
from matcher.hasher import ImageHasher
from matcher.match import Matcher
from matcher.video import stills, video_frames
from testkit.synthetic import encode, synthetic_picture


def make_video(scenes: list[tuple[Image.Image, float]], size=(320, 240), fps=10,
               codec="libx264", fmt="mp4") -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for picture, seconds in scenes:
            frame_image = picture.convert("RGB").resize(size)
            for _ in range(round(seconds * fps)):
                for packet in stream.encode(av.VideoFrame.from_image(frame_image)):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def test_frames_are_sampled_about_once_a_second_and_still_scenes_collapse() -> None:
    data = make_video([(synthetic_picture(1), 3.0), (synthetic_picture(2), 3.0)])
    seconds = [second for second, _ in video_frames(data)]
    assert seconds[0] == 0
    assert len(seconds) == 2  # two still scenes, not six samples
    assert 2.5 <= seconds[1] <= 3.5


def test_an_image_has_one_still_and_a_video_its_sampled_frames() -> None:
    picture = encode(synthetic_picture(3))
    (only,) = stills(picture)
    assert only.second is None and only.image.size == decode_image(picture).size
    data = make_video([(synthetic_picture(1), 2.0), (synthetic_picture(2), 2.0)])
    assert [still.second for still in stills(data)] == [s for s, _ in video_frames(data)]
    with pytest.raises(UnreadableImage):
        list(stills(b"<html>not a picture</html>"))


def test_registered_video_matches_a_reencoded_resized_copy_and_says_when(bank) -> None:
    victim_scene = synthetic_picture(41)
    original = make_video([(synthetic_picture(40), 2.0), (victim_scene, 3.0)])
    hasher = ImageHasher()
    bank.add("V-video", hasher.registration_hashes(original), source="clip.mp4")
    copy = make_video([(synthetic_picture(50), 4.0), (victim_scene, 2.0),
                       (synthetic_picture(51), 2.0)], size=(256, 192), fps=25,
                      codec="libvpx-vp9", fmt="webm")
    matches = Matcher(bank, hasher).match_bytes(copy)
    assert {m.victim for m in matches} == {"V-video"}
    assert all(4.0 <= m.second < 6.0 for m in matches)
    # An unrelated video matches nothing.
    other = make_video([(synthetic_picture(60), 2.0), (synthetic_picture(61), 2.0)])
    assert Matcher(bank, hasher).match_bytes(other) == []


def test_truncated_and_garbage_videos_are_clear_errors() -> None:
    with pytest.raises(UnreadableImage):
        list(video_frames(b"\x00\x00\x00\x18ftypisom" + bytes(100)))
    data = make_video([(synthetic_picture(3), 2.0), (synthetic_picture(4), 2.0)])
    try:
        frames = list(video_frames(data[: len(data) // 2]))
    except UnreadableImage as exc:  # MP4 keeps its index at the end: half a file has none
        assert "video" in str(exc)
    else:
        assert frames and all(isinstance(image, Image.Image) for _, image in frames)


def test_decoding_stops_at_its_frame_budget_keeping_the_samples_found(monkeypatch) -> None:
    import matcher.video

    data = make_video([(synthetic_picture(1), 3.0), (synthetic_picture(2), 3.0)])
    monkeypatch.setattr(matcher.video, "MAX_DECODED_FRAMES", 15)  # 1.5 s of 10 fps
    assert [second for second, _ in video_frames(data)] == [0]
    monkeypatch.setattr(matcher.video, "MAX_DECODED_FRAMES", 0)
    with pytest.raises(UnreadableImage, match="first 0 frames"):
        list(video_frames(data))
