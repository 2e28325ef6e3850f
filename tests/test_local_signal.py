"""The local stage of the cascade (issue 15): ORB features verified by geometry find copies the
global hashes miss, and are kept, searched and withdrawn with the care of every other hash.

Only generated pictures (testkit/synthetic.py), small, so the suite stays quick on two cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from matcher.bank import VictimBank, victim_hashes
from matcher.hasher import ImageHasher
from matcher.match import Matcher
from matcher.signals import SIGNAL_TYPES, get_signal
from matcher.signals.local import REGISTER_FEATURES, LocalFeatures
from matcher.verification import MIN_INLIERS
from testkit.synthetic import encode, synthetic_picture

HAECHI = str(Path(sys.executable).with_name("haechi"))
GLOBAL = [s for s in SIGNAL_TYPES.values() if not s.geometric]


def victim_picture(seed: int = 5) -> Image.Image:
    return synthetic_picture(seed, (480, 360))


def app_frame(picture: Image.Image) -> Image.Image:
    """The picture small inside a dark app screen: side panel, header, text rows and buttons
    (not the browser window the peelers know)."""
    shown = picture.resize((picture.width * 11 // 20, picture.height * 11 // 20))
    canvas = Image.new("RGB", (560, 420), (24, 26, 31))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, 120, 420), fill=(40, 44, 52))
    for row in range(8):
        draw.rectangle((14, 20 + row * 46, 104, 40 + row * 46), fill=(90, 96, 110))
    draw.rectangle((120, 0, 560, 48), fill=(52, 56, 66))
    draw.text((136, 16), "new upload - 3 min", fill=(230, 230, 230))
    canvas.paste(shown, (170, 80))
    for row in range(4):
        draw.text((170, 290 + row * 22), "comment comment comment " * 2, fill=(200, 200, 200))
    return canvas


def caption_band(picture: Image.Image) -> Image.Image:
    """Tall caption bands with text above (white) and under (dark) the picture, as meme and
    repost apps add them, the picture a little smaller than the frame."""
    shown = picture.resize((picture.width * 4 // 5, picture.height * 4 // 5))
    canvas = Image.new("RGB", (picture.width, picture.height * 7 // 4), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    top = picture.height * 2 // 5
    draw.rectangle((0, top + shown.height, canvas.width, canvas.height), fill=(14, 14, 14))
    canvas.paste(shown, ((canvas.width - shown.width) // 2, top))
    for row in range(4):
        draw.text((12, 10 + row * 32), "when you see it " * 3, fill=(0, 0, 0))
        draw.text((12, top + shown.height + 12 + row * 30), "look who it is lol " * 3,
                  fill=(250, 250, 250))
    return canvas


def rotated(picture: Image.Image) -> Image.Image:
    """5 degrees, canvas expanded with white corners, shrunk and re-saved."""
    turned = picture.rotate(5, resample=Image.Resampling.BILINEAR, expand=True,
                            fillcolor=(255, 255, 255))
    return turned.resize((turned.width * 3 // 4, turned.height * 3 // 4))


@pytest.fixture
def registered(bank: VictimBank) -> VictimBank:
    bank.add("V-local", ImageHasher().registration_hashes(encode(victim_picture(), quality=95),
                                                        local=True), "v.jpg")
    return bank


@pytest.mark.parametrize("edit", [app_frame, caption_band, rotated])
def test_copies_the_global_hashes_miss_are_found_by_the_local_stage(registered, edit):
    copy = encode(edit(victim_picture()), quality=80)
    assert Matcher(registered, ImageHasher(GLOBAL)).match_bytes(copy) == []  # PDQ misses it
    found = Matcher(registered).match_bytes(copy)
    assert [(m.victim, m.algorithm) for m in found] == [("V-local", "local")]
    assert found[0].inliers >= MIN_INLIERS
    assert set(found[0].as_json()) == {"victim", "algorithm", "inliers"}


def test_a_local_match_event_and_its_case_carry_the_inliers(registered, haechi_home):
    """The match event says how many keypoint matches verification confirmed, in its JSON
    too, and the case keeps it with the signal; a global match's event has no such field."""
    import datetime as dt

    from crawler.items import FetchRecord
    from matcher.events import MatchEvent
    from takedown.cases import CaseStore

    now = dt.datetime.now(dt.UTC)
    fetch = FetchRecord("https://example.org/a.jpg", "https://example.org/", "example.org", now,
                        200, "image/jpeg", "image", "ab" * 32, 1, {}, "93.184.216.34")
    local = Matcher(registered).match_bytes(encode(app_frame(victim_picture()), quality=80))[0]
    event = MatchEvent.of_fetch(fetch, local, now)
    assert event.inliers == local.inliers >= MIN_INLIERS
    wire = event.to_json()
    assert wire["inliers"] == local.inliers and MatchEvent.from_json(wire) == event
    same = Matcher(registered).match_bytes(encode(victim_picture(), quality=90))
    assert same and "inliers" not in MatchEvent.of_fetch(fetch, same[0], now).to_json()
    store = CaseStore.open()
    store.intake([event])
    signals = [store.get(c["id"])["signals"] for c in store.list()]
    assert signals and signals[0][0]["inliers"] == local.inliers


def test_a_mirrored_copy_is_found(registered):
    copy = encode(app_frame(victim_picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    found = Matcher(registered).match_bytes(copy)
    assert [m.victim for m in found] == ["V-local"] and found[0].view.endswith(":mirrored")


def test_another_region_of_the_same_photo_and_other_pictures_are_not_matched(bank):
    photo = synthetic_picture(8, (960, 360))
    left, right = photo.crop((0, 0, 480, 360)), photo.crop((480, 0, 960, 360))
    hasher = ImageHasher()
    bank.add("V-left", hasher.registration_hashes(encode(left, quality=95), local=True), "l")
    matcher = Matcher(bank)
    # A window of the same photo sharing a fifth of the picture (a strip), the rest not.
    strip = photo.crop((384, 0, 864, 360))
    for query in (right, strip, app_frame(right), caption_band(right), rotated(right),
                  *(app_frame(synthetic_picture(seed, (480, 360))) for seed in range(20, 26))):
        assert matcher.match_bytes(encode(query, quality=85)) == []
    assert [m.victim for m in matcher.match_bytes(encode(rotated(left)))] == ["V-left"]


def test_features_are_capped_and_cannot_come_from_a_hash_list(registered):
    with registered.engine.connect() as conn:
        codes = conn.execute(select(victim_hashes.c.code).where(
            victim_hashes.c.algorithm == "local")).scalars().all()
    assert len(codes) == 1 and len(codes[0]) <= 20_100  # sealed: nonce and tag on top
    blob = get_signal("local").hash_image(victim_picture()).code
    assert len(blob) <= 20_000 and len(LocalFeatures.unpack(blob)) <= REGISTER_FEATURES
    with pytest.raises(ValueError, match="cannot hold them"):
        get_signal("local").parse("00" * 32)


def test_a_picture_too_plain_for_pdq_is_registered_under_the_local_stage(bank):
    """A few handwritten-like notes on white: PDQ scores it too low, its corners are plenty."""
    art = Image.new("RGB", (480, 360), (255, 255, 255))
    draw = ImageDraw.Draw(art)
    rng = np.random.default_rng(3)
    for _ in range(10):
        x, y = (int(v) for v in rng.integers(0, 440, 2))
        draw.text((x % 400, y % 340), f"note {x}", fill=(0, 0, 0))
    records = ImageHasher().registration_hashes(encode(art, "PNG"), local=True)
    held = {r.algorithm for r in records}
    assert "local" in held and "pdq" not in held
    bank.add("V-art", records, "art.png")
    # Turned, not also shrunk: tiny text shrunk to 3/4 keeps 31 verified corners, under the
    # margin MIN_INLIERS keeps over tiled pictures (matcher/verification.py).
    turned = art.rotate(5, resample=Image.Resampling.BILINEAR, expand=True,
                        fillcolor=(255, 255, 255))
    assert [m.algorithm for m in Matcher(bank).match_bytes(encode(turned))] == ["local"]


def test_withdrawal_leaves_no_descriptor_in_the_database_or_the_index_files(
        registered, haechi_home):
    blob = get_signal("local").hash_image(victim_picture()).code
    descriptors = LocalFeatures.unpack(blob).descriptors
    copy = encode(app_frame(victim_picture()))
    assert Matcher(registered).match_bytes(copy)
    registered.save()
    assert (registered.index_dir / "local.index").exists()
    assert registered.withdraw("V-local") > 0
    assert Matcher(registered).match_bytes(copy) == []  # at once, in this process
    registered.save()
    with registered.engine.connect() as conn:
        assert conn.execute(select(victim_hashes.c.id).where(
            victim_hashes.c.algorithm == "local")).first() is None
    assert not (registered.index_dir / "local.index").exists()
    kept = b"".join(f.read_bytes() for f in haechi_home.rglob("*") if f.is_file())
    assert descriptors[:4].tobytes() not in kept
    fresh = VictimBank.open()
    assert Matcher(fresh).match_bytes(copy) == []


def test_the_index_survives_a_restart_and_takes_in_rows_registered_since(registered):
    registered.save()
    copy = encode(caption_band(victim_picture()))
    fresh = VictimBank.open()
    fresh.add("V-other", ImageHasher().registration_hashes(
        encode(synthetic_picture(9, (480, 360)), quality=95), local=True), "o.jpg")
    assert {m.victim for m in Matcher(fresh).match_bytes(copy)} == {"V-local"}
    other = encode(app_frame(synthetic_picture(9, (480, 360))))
    assert {m.victim for m in Matcher(fresh).match_bytes(other)} == {"V-other"}


def haechi(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([HAECHI, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def test_register_names_the_signals_and_match_json_reports_inliers(tmp_path):
    victim = tmp_path / "victim.jpg"
    victim.write_bytes(encode(victim_picture(), quality=95))
    registered = haechi("register", "--victim", "V-local", str(victim))
    assert f"{victim}: registered under pdq, phash, sha256, local" in registered.stdout
    summary = json.loads(haechi("register", "--victim", "V-local", str(victim),
                                "--json").stdout)
    assert summary["per_file"] == [{"path": str(victim), "victim": "V-local",
                                    "signals": ["pdq", "phash", "sha256", "local"]}]
    crawled = tmp_path / "crawled"
    crawled.mkdir()
    (crawled / "framed.jpg").write_bytes(encode(app_frame(victim_picture())))
    (crawled / "same.jpg").write_bytes(encode(victim_picture()))
    lines = {Path(o["path"]).name: o for o in map(json.loads, haechi(
        "match", "--json", str(crawled)).stdout.splitlines())}
    framed, same = lines["framed.jpg"]["matches"], lines["same.jpg"]["matches"]
    assert [set(m) for m in framed] == [{"victim", "algorithm", "inliers"}]
    assert framed[0]["algorithm"] == "local" and framed[0]["inliers"] >= MIN_INLIERS
    assert same and all(set(m) == {"victim", "algorithm", "distance"} for m in same)
    assert "inliers)" in haechi("match", str(crawled / "framed.jpg")).stdout


def test_local_rows_are_kept_and_withdrawn_on_postgresql(haechi_home):
    """18 KB sealed codes in victim_hashes: no index on the code (revision 0006 dropped it), so
    PostgreSQL keeps them as it keeps every row, and withdrawal deletes them."""
    from tests.takedown_helpers import postgres_database

    with postgres_database() as url:
        bank = VictimBank.open(url)
        bank.add("V-local", ImageHasher().registration_hashes(
            encode(victim_picture(), quality=95), local=True), "v.jpg")
        copy = encode(app_frame(victim_picture()))
        assert [m.algorithm for m in Matcher(VictimBank.open(url)).match_bytes(copy)] == [
            "local"]
        assert bank.withdraw("V-local") > 0 and Matcher(bank).match_bytes(copy) == []
        bank.engine.dispose()


def test_a_tiny_picture_has_no_local_features_and_is_still_hashed() -> None:
    """A 1x1 lazy-load placeholder or a 20-px icon once failed OpenCV's pyramid, which made
    the whole file unreadable to the crawl."""
    import io

    from PIL import Image

    from matcher.hasher import ImageHasher

    for size in ((1, 1), (20, 20), (300, 12)):
        out = io.BytesIO()
        Image.new("RGB", size, (200, 10, 10)).save(out, "PNG")
        [frame] = ImageHasher().media_hashes(out.getvalue())
        assert frame.hashes.codes


def test_query_rows_describe_the_peeled_crops_each_in_its_own_frame() -> None:
    """The picture as found (upright and mirrored), then each crop the peelers found (upright),
    each with its own size: the verifier judges a crop's keypoints on the crop's frame."""
    from matcher.signals.local import query_size, split_query

    framed = app_frame(victim_picture())
    crop = framed.crop((170, 80, 170 + 264, 80 + 198))
    rows = get_signal("local").query_rows(framed, [crop])
    assert list(split_query(rows)) == [0, 1, 2]
    # Described at most 512 px long (matcher/decode.py's working size).
    assert query_size(rows, 0) == (512, 384) and query_size(rows, 2) == crop.size


def test_the_mirror_is_described_from_the_upright_keypoints_bit_for_bit() -> None:
    """The mirrored side costs no second detection: each upright keypoint, mirrored on its own
    pyramid level, is where ORB finds the corner in the mirrored picture, with the same
    descriptor (on every level, not only the first, whose mirror is a plain flip)."""
    from matcher.signals.local import _grey, _orb, describe_both

    grey = _grey(synthetic_picture(31), 512)
    upright, mirrored = describe_both(grey, 1000)
    assert len(mirrored) == len(upright) > 500
    detected, descriptors = _orb(100_000).detectAndCompute(
        np.ascontiguousarray(grey[:, ::-1]), None)
    at: dict[tuple[float, float], set[bytes]] = {}
    for keypoint, descriptor in zip(detected, descriptors, strict=True):
        at.setdefault((round(keypoint.pt[0], 2), round(keypoint.pt[1], 2)), set()).add(
            bytes(descriptor))
    same = [bytes(d) in at.get((round(float(x), 2), round(float(y), 2)), set())
            for (x, y), d in zip(mirrored.points, mirrored.descriptors, strict=True)]
    assert np.mean(same) > 0.99
    # Far from the left edge upright is near the right edge mirrored.
    assert abs(float(upright.points[0, 0]) + float(mirrored.points[0, 0]) - grey.shape[1]) < 60


def test_a_crop_that_keeps_most_of_the_picture_is_not_described_again() -> None:
    """A thin border's crop holds nothing the picture as found does not: only the crop that
    takes a frame away gets keypoints of its own."""
    from matcher.signals.local import PEELED_MAX_SHARE, split_query

    framed = app_frame(victim_picture())
    thin = framed.crop((4, 4, framed.width - 4, framed.height - 4))
    assert thin.width * thin.height > PEELED_MAX_SHARE * framed.width * framed.height
    inner = framed.crop((170, 80, 170 + 264, 80 + 198))
    rows = get_signal("local").query_rows(framed, [thin, inner])
    assert list(split_query(rows)) == [0, 1, 2]
    assert (rows[rows[:, 4] == 2][:, 5:].shape[0] > 100)
