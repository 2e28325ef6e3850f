"""Signal types: bit-exact standard PDQ, orientation-robust queries, clear parse errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from matcher.signals import SIGNAL_TYPES, get_signal
from tests.conftest import PDQ_REFERENCE

pdq = SIGNAL_TYPES["pdq"]
phash = SIGNAL_TYPES["phash"]
sha256 = SIGNAL_TYPES["sha256"]


def reference_rows() -> list[dict[str, str]]:
    with open(PDQ_REFERENCE / "reference.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("row", reference_rows(), ids=lambda r: r["file"])
def test_pdq_hash_of_full_image_is_bit_exact_with_the_standard_reference(row):
    image = Image.open(PDQ_REFERENCE / row["file"]).convert("RGB")
    hashed = pdq.hash_image(image)
    assert pdq.format(hashed.code) == row["pdq"]
    assert hashed.quality == int(row["quality"])


@pytest.mark.parametrize("name", ["bridge-2-rotate-90.jpg", "bridge-3-rotate-180.jpg",
                                  "bridge-4-rotate-270.jpg", "bridge-5-flipx.jpg",
                                  "bridge-6-flipy.jpg", "bridge-7-flip-plus-1.jpg",
                                  "bridge-8-flip-minus-1.jpg"])
def test_pdq_dihedral_query_of_rotated_or_mirrored_file_reaches_original_hash(name):
    original = pdq.parse(reference_rows()[0]["pdq"])
    image = Image.open(PDQ_REFERENCE / "dih" / name).convert("RGB")
    plain = pdq.hash_image(image).code
    assert pdq.distance(plain, original) > pdq.threshold  # plain PDQ misses it
    best = min(pdq.distance(h.code, original) for h in pdq.hash_dihedral(image))
    assert best <= 8


def test_phash_dihedral_contains_the_upright_hash_and_seven_others():
    image = Image.open(PDQ_REFERENCE / "bridge-mods" / "aaa-orig.jpg").convert("RGB")
    hashes = [h.code for h in phash.hash_dihedral(image)]
    assert len(hashes) == 8
    assert phash.distance(hashes[0], phash.hash_image(image).code) <= 2
    assert len(set(hashes)) == 8


def test_sha256_hashes_bytes_exactly_and_refuses_pixels():
    assert sha256.format(sha256.hash_bytes(b"abc").code).startswith("ba7816bf")
    with pytest.raises(NotImplementedError):
        sha256.hash_image(Image.new("RGB", (8, 8)))


def test_distance_counts_differing_bits():
    assert pdq.distance(bytes(32), bytes([0xFF, 0x01]) + bytes(30)) == 9


@pytest.mark.parametrize(("text", "reason"), [("abc", "64 hex digits"), ("zz" * 32, "not a hex")])
def test_parse_rejects_malformed_hashes_with_a_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        pdq.parse(text)


def test_unknown_algorithm_error_lists_the_known_ones():
    with pytest.raises(ValueError, match="pdq, phash, sha256"):
        get_signal("md5")


def test_low_quality_pdq_hash_of_flat_image_is_under_the_floor():
    flat = Image.fromarray(np.full((100, 100, 3), 128, dtype=np.uint8))
    assert pdq.hash_image(flat).quality < pdq.min_quality


def test_phash_orientations_from_one_dct_equal_imagehash_on_each_orientation() -> None:
    import imagehash

    from matcher.signals.base import DIHEDRAL_TRANSPOSES
    from matcher.signals.phash import PhashSignal
    from testkit.synthetic import synthetic_picture

    signal = PhashSignal()
    for seed in range(12):
        image = synthetic_picture(seed, size=(320, 240))
        small = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
        expected = {
            np.packbits(imagehash.phash(view).hash.flatten()).tobytes()
            for view in (small, *(small.transpose(t) for t in DIHEDRAL_TRANSPOSES))
        }
        assert {h.code for h in signal.hash_dihedral(image)} == expected
