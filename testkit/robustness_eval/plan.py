"""The planner: draws the whole split once, from fixed seeds, into ``manifest.json``.

It was run once, on the fetched photos, before anything was measured; the manifest it wrote is
committed and frozen. Running it again with the same photos and libraries writes the same
manifest (``--check`` says whether it does), but the split is the committed manifest, not
this code: never re-plan to change a figure.

    .venv/bin/python -m testkit.robustness_eval.plan [--photos DIR] [--check]
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from testkit.robustness_eval import MANIFEST, photos_dir
from testkit.robustness_eval import edits as E

MASTER_SEED = 15_2025  # issue 15
VICTIMS_PHOTO, VICTIMS_ART = 28, 12  # 40 victims; every other source is a distractor source
OTHER_REGIONS_PER_VICTIM = 6  # other regions of a victim's photo, as they are
OTHER_REGION_EDITS_PER_VICTIM = 3  # ... and edited
DISTRACTOR_REGIONS = 3  # regions of each distractor photo, beside the whole photo
DISTRACTOR_EDITS = 12  # edits of each distractor photo or its regions
CHAINS_PER_VICTIM = 2
HARD_SHARE = 0.4  # of each family's queries drawn from the hard ranges (the label is the rule's)
REGION_OVERLAP_MAX = 0.10  # an "other region" overlaps the victim's region by at most this
# share of its own area and of the victim region's area

P = "plasma-workspace-wallpapers"
L16, L20, L = "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "lomiri-wallpapers"
U, Q, X = "ukui-wallpapers", "lxqt-themes", "xfdesktop4-data"


def _plasma(name: str, size: str, ext: str, kind: str) -> tuple[str, str, str]:
    return (P, f"usr/share/wallpapers/{name}/contents/images/{size}.{ext}", kind)


# (package, path in the package, kind). kind: photo, art (drawn or rendered), plain (little
# structure: only ever a distractor). One picture per wallpaper (the largest landscape size).
# Left out: lomiri-default-background.png (the same picture as warty-final-ubuntu.png, and no
# licence stanza of its own); as near-duplicates of a listed picture: ukui rhythm.jpg
# (~ 2004default.jpg), lxqt origami-dark, origami-light, lxqt-origami-green
# (~ origami-bright-logo), plasma-logo-dark (~ -bright), waves-purple-logo and
# simple_blue_widescreen (~ waves-logo), xfce-blue and xfce-verticals (~ xfce-teal,
# xfce-stripes); every plasma dark variant and portrait size.
SOURCES: tuple[tuple[str, str, str], ...] = (
    _plasma("Altai", "5120x2880", "png", "art"),
    _plasma("Autumn", "2560x1600", "jpg", "art"),
    _plasma("BytheWater", "2560x1600", "jpg", "photo"),
    _plasma("Canopee", "3840x2160", "png", "art"),
    _plasma("Cascade", "3840x2160", "png", "art"),
    _plasma("Cluster", "3840x2160", "png", "art"),
    _plasma("ColdRipple", "2560x1600", "jpg", "photo"),
    _plasma("ColorfulCups", "2560x1600", "jpg", "photo"),
    _plasma("DarkestHour", "2560x1600", "jpg", "photo"),
    _plasma("Elarun", "2560x1600", "png", "plain"),
    _plasma("EveningGlow", "2560x1600", "jpg", "photo"),
    _plasma("FallenLeaf", "2560x1600", "jpg", "photo"),
    _plasma("Flow", "5120x2880", "jpg", "art"),
    _plasma("FlyingKonqui", "2560x1600", "png", "art"),
    _plasma("Grey", "2560x1600", "jpg", "photo"),
    _plasma("Honeywave", "5120x2880", "jpg", "art"),
    _plasma("IceCold", "5120x2880", "png", "art"),
    _plasma("Kay", "5120x2880", "png", "art"),
    _plasma("Kite", "2560x1600", "jpg", "photo"),
    _plasma("Kokkini", "3840x2160", "png", "art"),
    _plasma("MilkyWay", "5120x2880", "png", "art"),
    _plasma("OneStandsOut", "2560x1600", "jpg", "photo"),
    _plasma("Opal", "3840x2160", "png", "art"),
    _plasma("PastelHills", "3200x2000", "jpg", "art"),
    _plasma("Patak", "5120x2880", "png", "art"),
    _plasma("Path", "2560x1600", "jpg", "photo"),
    _plasma("SafeLanding", "5120x2880", "jpg", "art"),
    _plasma("Shell", "5120x2880", "jpg", "art"),
    _plasma("Volna", "5120x2880", "jpg", "photo"),
    _plasma("summer_1am", "2560x1600", "jpg", "photo"),
    *((L16, f"usr/share/backgrounds/{n}.jpg", "photo") for n in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
        "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
        "analogpattern_by_Peter_Nerlich", "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
        "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
        "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")),
    (L16, "usr/share/backgrounds/umang_by_Abhishek_Mudgal.jpg", "art"),
    (L20, "usr/share/backgrounds/Fossa_by_Jasper_Roks.jpg", "art"),
    (L20, "usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg", "photo"),
    (L20, "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg", "photo"),
    (L20, "usr/share/backgrounds/Painting-Colors_by__herobrine7gamer.jpg", "art"),
    (L, "usr/share/backgrounds/warty-final-ubuntu.png", "plain"),
    *((U, f"usr/share/backgrounds/{n}", k) for n, k in (
        ("2004default.jpg", "art"), ("calla.png", "art"), ("city.png", "plain"),
        ("desert.png", "plain"), ("firstgeneration.jpg", "art"), ("fluent-color.png", "art"),
        ("focal-ubuntukylin.png", "art"), ("goldfish.png", "art"), ("rollpaper.png", "plain"),
        ("string.jpg", "art"), ("the-mouse.jpg", "art"))),
    *((Q, f"usr/share/lxqt/wallpapers/{n}", k) for n, k in (
        ("Butterfly-Kenneth-Wimer.jpg", "photo"), ("Valendas.png", "photo"),
        ("after-the-rain.jpg", "photo"), ("appleflower.png", "photo"), ("beam.png", "photo"),
        ("butterfly.png", "photo"), ("cloud.png", "photo"), ("drop.png", "photo"),
        ("flowers.png", "photo"), ("fog.jpg", "photo"), ("this-is-not-windows.jpg", "photo"),
        ("kde-plasma.png", "art"), ("origami-bright-logo.png", "art"),
        ("plasma-logo-bright.png", "art"), ("plasma_arch.png", "art"),
        ("triangles-logo.png", "art"), ("triangles.png", "art"), ("waves-logo.png", "art"))),
    (X, "usr/share/backgrounds/xfce/xfce-stripes.png", "plain"),
    (X, "usr/share/backgrounds/xfce/xfce-teal.jpg", "plain"),
)


def licence(root: Path, package: str, path: str) -> str:
    """The licence the package states for this file: a Plasma wallpaper's metadata.json, else
    the Debian copyright stanza whose Files pattern matches it best."""
    if package == P:
        meta = root / Path(path).parents[2] / "metadata.json"
        if not meta.exists():
            meta = meta.with_name("metadata.desktop")
        text = meta.read_text(encoding="utf-8")
        for line in text.splitlines():
            if '"License"' in line or line.startswith("X-KDE-PluginInfo-License"):
                value = line.split(":", 1)[-1] if '"License"' in line else line.split("=", 1)[1]
                return value.strip().strip('",') + " (metadata.json); package: GPL-2+"
    stanzas = (root / "usr/share/doc" / package / "copyright").read_text(encoding="utf-8")
    best, best_len = "", -1
    name = os.path.basename(path)
    for block in stanzas.split("\n\n"):
        files, lic = None, None
        for line in block.splitlines():
            if line.startswith("Files:"):
                files = line[6:].split()
            elif line.startswith("License:"):
                lic = line[8:].strip()
        for pattern in files or ():
            # Files paths are the source tree's: match a named file by its name, else "*"
            tail = os.path.basename(pattern)
            if pattern != "*" and (any(c in tail for c in "*?[") or not fnmatch.fnmatch(
                    name, tail)):
                continue
            weight = 0 if pattern == "*" else len(pattern)
            if weight > best_len and lic:
                best, best_len = lic, weight
    return best


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fitted(w: int, h: int) -> list[int]:
    """The size of a w x h region once made at most MAX_SIDE long (as ``edits.fit`` does)."""
    f = E.MAX_SIDE / max(w, h)
    return [w, h] if f >= 1 else [max(1, round(w * f)), max(1, round(h * f))]


def _overlap(a: list[int], b: list[int]) -> float:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _area(a: list[int]) -> int:
    return (a[2] - a[0]) * (a[3] - a[1])


def victim_box(rng, w: int, h: int) -> list[int]:
    """The victim's picture: 50-60% of the photo along its long side, from one end, and
    70-90% across."""
    if w >= h:
        bw, bh = round(w * rng.uniform(0.5, 0.6)), round(h * rng.uniform(0.7, 0.9))
        x = 0 if rng.random() < 0.5 else w - bw
        y = int(rng.integers(0, h - bh + 1))
    else:
        bw, bh = round(w * rng.uniform(0.7, 0.9)), round(h * rng.uniform(0.5, 0.6))
        y = 0 if rng.random() < 0.5 else h - bh
        x = int(rng.integers(0, w - bw + 1))
    return [x, y, x + bw, y + bh]


def other_region(rng, w: int, h: int, victim: list[int]) -> list[int]:
    """A region of the same photo that overlaps the victim's picture little."""
    for _ in range(5000):
        long_f, short_f = rng.uniform(0.25, 0.45), rng.uniform(0.4, 0.9)
        bw, bh = (round(w * long_f), round(h * short_f)) if w >= h else \
            (round(w * short_f), round(h * long_f))
        if not 0.5 <= bw / bh <= 2.0:
            continue
        x, y = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
        box = [x, y, x + bw, y + bh]
        inter = _overlap(box, victim)
        if inter <= REGION_OVERLAP_MAX * _area(box) and inter <= REGION_OVERLAP_MAX * _area(victim):
            return box
    raise RuntimeError("no other region found")


def any_region(rng, w: int, h: int) -> list[int]:
    area = rng.uniform(0.2, 0.5)
    aspect = rng.uniform(0.6, 1.7) * (w / h)
    bw = min(w, round(math.sqrt(area * w * h * aspect)))
    bh = min(h, round(area * w * h / bw))
    x, y = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
    return [x, y, x + bw, y + bh]


def plan(root: Path) -> dict:
    from testkit.robustness_eval.generate import library_versions

    master = np.random.default_rng(MASTER_SEED)
    sources = []
    for i, (package, path, kind) in enumerate(SOURCES, 1):
        file = root / path
        with Image.open(file) as im:
            w, h = im.size
        sources.append({"id": f"S{i:02d}", "package": package, "path": path, "kind": kind,
                        "licence": licence(root, package, path), "sha256": sha256(file),
                        "size": [w, h]})
    photos = [s for s in sources if s["kind"] == "photo"]
    arts = [s for s in sources if s["kind"] == "art"]
    victims = set()
    for pool, n in ((photos, VICTIMS_PHOTO), (arts, VICTIMS_ART)):
        for j in master.choice(len(pool), n, replace=False):
            victims.add(pool[int(j)]["id"])
    for s in sources:
        s["role"] = "victim" if s["id"] in victims else "distractor"

    bases, victim_rows = [], []

    def base(source: dict, box: list[int], role: str, victim: str | None = None) -> dict:
        b = {"id": f"B{len(bases) + 1:03d}", "source": source["id"], "box": box, "role": role,
             "size": fitted(box[2] - box[0], box[3] - box[1])}
        if victim:
            b["victim"] = victim
        bases.append(b)
        return b

    n_victim = 0
    by_source: dict[str, list[dict]] = {}
    for s in sources:
        rng = np.random.default_rng([MASTER_SEED, int(s["id"][1:])])
        w, h = s["size"]
        if s["role"] == "victim":
            n_victim += 1
            vid = f"RV{n_victim:02d}"
            vbox = victim_box(rng, w, h)
            vb = base(s, vbox, "victim", vid)
            victim_rows.append({"victim": vid, "base": vb["id"], "source": s["id"],
                                "file": f"victims/{vid}.png"})
            by_source[s["id"]] = [vb] + [base(s, other_region(rng, w, h, vbox), "other_region")
                                         for _ in range(OTHER_REGIONS_PER_VICTIM)]
        else:
            by_source[s["id"]] = [base(s, [0, 0, w, h], "distractor_photo")] + [
                base(s, any_region(rng, w, h), "distractor_region")
                for _ in range(DISTRACTOR_REGIONS)]

    queries = []

    def query(b: dict, kind: str, expected: str | None, family: str | None, level: str,
              seed: int) -> None:
        if family is None:
            entry = {"family": "none", "parts": [], "steps": [], "difficulty": "mild",
                     "hard_reasons": [], "expected_size": b["size"]}
        elif family == "shuffle_pixels":
            entry = {"family": "shuffle_pixels", "parts": ["shuffle_pixels"],
                     "steps": [E._step("shuffle_pixels", factor=1.0, seed=seed % (2**31))],
                     "difficulty": "mild", "hard_reasons": [], "expected_size": b["size"]}
        else:
            entry = E.draw_edit(np.random.default_rng(seed), family, *b["size"], level)
        queries.append({"base": b["id"], "kind": kind, "expected": expected, "seed": seed,
                        "drawn_as": level, **entry})

    seeds = iter(master.integers(0, 2**62, 100_000).tolist())
    victims_bases = [b for b in bases if b["role"] == "victim"]
    n = len(victims_bases)
    for family in E.SINGLE:
        hard = set(master.choice(n, round(HARD_SHARE * n), replace=False).tolist())
        for i, vb in enumerate(victims_bases):
            query(vb, "positive", vb["victim"], family, "hard" if i in hard else "mild",
                  next(seeds))
    for _ in range(CHAINS_PER_VICTIM):
        hard = set(master.choice(n, n // 2, replace=False).tolist())
        for i, vb in enumerate(victims_bases):
            query(vb, "positive", vb["victim"], "chain", "hard" if i in hard else "mild",
                  next(seeds))
    families = (*E.SINGLE, "chain")
    for s in sources:
        own = by_source[s["id"]]
        if s["role"] == "victim":
            vb, regions = own[0], own[1:]
            for r in regions:
                query(r, "other_region", None, None, "mild", next(seeds))
            for _ in range(OTHER_REGION_EDITS_PER_VICTIM):
                r = regions[int(master.integers(len(regions)))]
                query(r, "other_region_edit", None, str(master.choice(families)),
                      "mild" if master.random() < 0.6 else "hard", next(seeds))
            query(vb, "shuffle_pixels", None, "shuffle_pixels", "mild", next(seeds))
        else:
            for b in own:
                query(b, "distractor_photo", None, None, "mild", next(seeds))
            for _ in range(DISTRACTOR_EDITS):
                b = own[int(master.integers(len(own)))]
                query(b, "distractor_photo_edit", None, str(master.choice(families)),
                      "mild" if master.random() < 0.6 else "hard", next(seeds))
    order = master.permutation(len(queries))
    for k, qi in enumerate(order.tolist()):
        queries[qi]["file"] = f"queries/{k + 1:05d}.jpg"
    queries.sort(key=lambda q: q["file"])

    positives = [q for q in queries if q["expected"]]
    return {
        "name": "haechi robustness eval split (issue 15)",
        "frozen": True,
        "rule": "Frozen eval split: never tune a threshold, a peeler or a model on it.",
        "master_seed": MASTER_SEED,
        "made_with": library_versions(),
        "hard_rule": E.HARD_RULE,
        "query_encoding": f"JPEG quality {E.JPEG_OUT_QUALITY} (Pillow); victims: PNG",
        "counts": {
            "victims": len(victim_rows), "positives": len(positives),
            "distractors": len(queries) - len(positives),
            "by_family": {f: sum(q["family"] == f for q in positives) for f in families},
            "by_kind": {k: sum(q["kind"] == k for q in queries) for k in sorted(
                {q["kind"] for q in queries})},
            "mild_positives": sum(q["difficulty"] == "mild" for q in positives),
        },
        "sources": sources,
        "victims": victim_rows,
        "bases": bases,
        "queries": queries,
    }


def dump(manifest: dict) -> str:
    """The manifest as text: one line per source, base, victim and query."""
    out = []
    for key, value in manifest.items():
        if isinstance(value, list):
            rows = ",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value)
            out.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            out.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(out) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, help="the fetched photos (fetch.sh's folder)")
    ap.add_argument("--check", action="store_true",
                    help="only say whether planning again gives the committed manifest")
    ap.add_argument("--out", type=Path, default=MANIFEST)
    args = ap.parse_args(argv)
    root = (args.photos or photos_dir()) / "root"
    text = dump(plan(root))
    if args.check:
        same = MANIFEST.exists() and MANIFEST.read_text(encoding="utf-8") == text
        print("same as the committed manifest" if same else "DIFFERS from the committed manifest")
        return 0 if same else 1
    if args.out == MANIFEST and MANIFEST.exists():
        print(f"{MANIFEST} exists and is frozen; write elsewhere with --out", file=sys.stderr)
        return 1
    args.out.write_text(text, encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
