"""The frozen robustness eval split (testkit/robustness_eval/): its invariants, fast, with no
photos, no wallpaper cache and no network."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from testkit.robustness_eval import edits as E
from testkit.robustness_eval import load_manifest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manifest() -> dict:
    return load_manifest()


def test_manifest_loads_and_is_frozen(manifest):
    assert manifest["frozen"] is True
    assert manifest["master_seed"] == 152025
    assert "never tune" in manifest["rule"].lower()
    assert manifest["hard_rule"] == E.HARD_RULE


def test_every_family_is_present_with_its_libraries(manifest):
    positives = [q for q in manifest["queries"] if q["expected"]]
    families = Counter(q["family"] for q in positives)
    assert set(families) == set(E.FAMILIES)
    assert all(n >= 40 for n in families.values())
    for q in manifest["queries"]:
        for step in q["steps"]:
            assert step["library"] == E.LIBRARY[step["op"]]
            assert step["library"] in {"augly", "albumentations", "pillow"}
    ops = {s["op"] for q in positives for s in q["steps"]}
    assert ops >= {"screenshot", "meme_band", "caption", "text", "emoji", "stripes", "pad",
                   "rotate_expand", "rotate90", "mirror", "perspective", "crop", "resize",
                   "jpeg"}
    chains = [q for q in positives if q["family"] == "chain"]
    assert {len(q["parts"]) for q in chains} == {2, 3}
    assert {q["difficulty"] for q in positives} == {"mild", "hard"}
    for q in positives:
        assert (q["difficulty"] == "hard") == bool(q["hard_reasons"])


def test_victims_and_distractors(manifest):
    victims = {v["victim"] for v in manifest["victims"]}
    assert len(victims) >= 40
    roles = Counter(s["role"] for s in manifest["sources"])
    assert roles["victim"] >= 40 and roles["distractor"] >= 40
    assert all(s["licence"] and len(s["sha256"]) == 64 for s in manifest["sources"])
    # none of the benchmark's packages (scripts/fetch_wallpapers.sh)
    assert not {s["package"] for s in manifest["sources"]} & {"mate-backgrounds",
                                                               "gnome-backgrounds"}
    distractors = [q for q in manifest["queries"] if not q["expected"]]
    assert len(distractors) >= 1000
    kinds = Counter(q["kind"] for q in distractors)
    assert kinds["other_region"] > 0 and kinds["shuffle_pixels"] > 0
    assert kinds["distractor_photo"] > 0 and kinds["distractor_photo_edit"] > 0
    for q in manifest["queries"]:
        if q["expected"]:
            assert q["expected"] in victims and q["kind"] == "positive"
    files = [q["file"] for q in manifest["queries"]]
    assert len(set(files)) == len(files)


def test_other_regions_overlap_the_victim_little(manifest):
    bases = {b["id"]: b for b in manifest["bases"]}
    victim_box = {b["source"]: b["box"] for b in bases.values() if b["role"] == "victim"}
    for b in bases.values():
        if b["role"] != "other_region":
            continue
        v, r = victim_box[b["source"]], b["box"]
        inter = max(0, min(v[2], r[2]) - max(v[0], r[0])) * \
            max(0, min(v[3], r[3]) - max(v[1], r[1]))
        assert inter <= 0.10 * (r[2] - r[0]) * (r[3] - r[1]) + 1


def test_seeds_are_fixed(manifest):
    seeds = [q["seed"] for q in manifest["queries"]]
    assert len(set(seeds)) == len(seeds)
    for q in manifest["queries"]:
        for s in q["steps"]:
            if s["op"] in {"perspective", "rotate_expand", "shuffle_pixels"}:
                assert isinstance(s["params"]["seed"], int)


def test_each_edit_is_drawn_again_from_its_seed(manifest):
    pytest.importorskip("augly")  # the drawing reads AugLy's font and emoji assets
    sizes = {b["id"]: b["size"] for b in manifest["bases"]}
    drawn = [q for q in manifest["queries"] if q["family"] not in {"none", "shuffle_pixels"}]
    for q in drawn[::7]:
        again = E.draw_edit(np.random.default_rng(q["seed"]), q["family"], *sizes[q["base"]],
                            q["drawn_as"])
        assert again["steps"] == q["steps"]
        assert again["difficulty"] == q["difficulty"]


def _generated_photo(w: int = 640, h: int = 480) -> np.ndarray:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 / w), (y * 255 / h), ((x + y) % 97) * 2.6], -1)
    for _ in range(12):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(20, 90)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    return img.astype(np.uint8)


def _three(manifest: dict) -> list[dict]:
    want = ("screenshot", "perspective", "chain")
    out = []
    for fam in want:
        out.append(next(q for q in manifest["queries"] if q["family"] == fam))
    return out


RENDER = """
import hashlib, json, sys
import numpy as np
from PIL import Image
sys.path.insert(0, {root!r})
from testkit.robustness_eval.generate import render
photo = Image.fromarray(np.load(sys.argv[1]))
for q in json.loads(open(sys.argv[2]).read()):
    print(hashlib.sha256(render(photo, q)).hexdigest())
"""


def test_three_queries_from_a_generated_photo_are_the_same_bytes(manifest, tmp_path):
    pytest.importorskip("augly")
    pytest.importorskip("albumentations")
    from PIL import Image

    from testkit.robustness_eval.generate import render

    arr = _generated_photo()
    queries = _three(manifest)
    first = [render(Image.fromarray(arr), q) for q in queries]
    second = [render(Image.fromarray(arr.copy()), q) for q in queries]
    assert first == second
    assert all(b[:2] == b"\xff\xd8" for b in first)
    assert len({hashlib.sha256(b).digest() for b in first}) == 3
    # and in a fresh interpreter (no state carried over from this one)
    np.save(tmp_path / "photo.npy", arr)
    (tmp_path / "q.json").write_text(json.dumps(queries))
    out = subprocess.run([sys.executable, "-c", RENDER.format(root=str(ROOT)),
                          str(tmp_path / "photo.npy"), str(tmp_path / "q.json")],
                         capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == [hashlib.sha256(b).hexdigest() for b in first]
