"""Robustness benchmark: recall per re-uploader edit and false matches, on real photos.

Corpus: Debian's mate-backgrounds and gnome-backgrounds photos (scripts/fetch_wallpapers.sh),
each cut into a grid of non-overlapping regions. Most regions are registered as victims; the
rest are held out. Every region is edited in every way in testkit/edits.py and matched. A hit on
any victim other than the region's own is a false match: the other regions of the same photo
are the hardest non-matches there are. Prints JSON on stdout, a table on stderr.

    python scripts/bench_robustness.py [--grid 3x2] [--limit N] [--algorithms pdq,phash]
    python scripts/bench_robustness.py --library    # the library edits (the tuning split)

Two sets of edits. By default, testkit/edits.py: the edits the global stage's views were
written for. With --library, the edit families of the frozen eval split
(testkit/robustness_eval/edits.py: AugLy, albumentations and Pillow, with their mild and hard
ranges), drawn afresh here from LIBRARY_SEED on this benchmark's photos: a tuning split of the
same kinds of edit on other pictures, so the local stage can be tuned on library edits while
the frozen split (other photos, its own draws) stays unseen. It also matches windows of each
photo shifted off a region so they share only 10-30% of it: near neighbours that must not
match that region. Every threshold of the local stage names the split it was tuned on.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.edits import EDITS, MILD_EDITS  # noqa: E402
from testkit.synthetic import encode  # noqa: E402

# Regions are scaled to this long side before editing: the size of a typical posted photo,
# and it keeps the benchmark to minutes on two cores.
REGION_SIZE = 900

# Every HOLD_OUT-th region is not registered: its edited copies must match nothing at all.
HOLD_OUT = 4

# --library: the seed of this split's draws (the frozen split's is its own), and the share of
# each family's copies drawn from its hard ranges (as the frozen split draws them).
LIBRARY_SEED = 15_2026
LIBRARY_HARD_SHARE = 0.4


def library_edits() -> dict[str, object]:
    """The frozen split's edit families, by name; each is drawn per region in library_copy."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from testkit.robustness_eval import edits as library

    return {family: library for family in library.FAMILIES}


def library_copy(region: Image.Image, family_name: str, number: int,
                 ) -> tuple[Image.Image, str]:
    """One library edit of a region, drawn from its own seed: the picture and mild/hard."""
    import warnings

    from testkit.robustness_eval import edits as library

    index = library.FAMILIES.index(family_name)
    rng = np.random.default_rng([LIBRARY_SEED, number, index])
    level = "hard" if rng.random() < LIBRARY_HARD_SHARE else "mild"
    drawn = library.draw_edit(rng, family_name, *region.size, level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return library.apply_steps(region, drawn["steps"]), drawn["difficulty"]


def family(victim: str) -> str:
    """The picture a region belongs to, whatever its colour or size variant.

    The packages ship one picture several times: light and dark (`-l`/`-d`, `-Light`/`-Dark`),
    recoloured (`Ubuntu-Mate-Cold`/`-Warm`/`-Radioactive`/`-Dark`) and resized
    (`_3840x2160`). A recoloured copy of a victim's picture is still that picture, so a region
    matching the same region of a variant is a true match, not a false one.
    """
    stem, _, region = victim.partition("#")
    stem = re.sub(r"(-[dl]|_\d+x\d+)$", "", stem)
    stem = re.sub(r"-?(Cold|Warm|Radioactive|Dark|Light)", "", stem)
    return stem + "#" + region


def wallpaper_files() -> list[Path]:
    cache = Path(subprocess.check_output([str(ROOT / "scripts" / "fetch_wallpapers.sh")],
                                         text=True).strip())
    photos = sorted((cache / "root" / "usr" / "share" / "backgrounds").rglob("*"))
    return [p for p in photos if p.suffix.lower() in (".jpg", ".png", ".webp")]


def _photo(path: Path) -> Image.Image | None:
    """The photo at most 2,000 px long, RGB; None when too small to cut into regions."""
    with Image.open(path) as opened:
        opened.draft("RGB", (2000, 2000))
        image = opened.convert("RGB")
    if min(image.size) < 400:
        return None
    image.thumbnail((2000, 2000))
    return image


def _grid(size: tuple[int, int], columns: int, rows: int) -> list[tuple[int, int, int, int]]:
    """The boxes of the regions, row by row: the numbering every region name uses."""
    width, height = size
    return [(width * column // columns, height * row // rows,
             width * (column + 1) // columns, height * (row + 1) // rows)
            for row in range(rows) for column in range(columns)]


def regions(path: Path, columns: int, rows: int) -> list[Image.Image]:
    image = _photo(path)
    if image is None:
        return []
    cut = []
    for box in _grid(image.size, columns, rows):
        region = image.crop(box)
        region.thumbnail((REGION_SIZE, REGION_SIZE))
        cut.append(region)
    return cut


# --library: windows of each photo shifted off a region so they share only this much of it
# (the rest is its neighbour), right and down: near neighbours that must not match the region
# they overlap (matching the neighbour they mostly show is right).
WINDOW_OVERLAPS = (0.1, 0.2, 0.3)


def neighbour_windows(path: Path, columns: int, rows: int,
                      ) -> list[tuple[Image.Image, int, int]]:
    """(window, region it overlaps a little, region it mostly shows) of one photo, with the
    regions numbered as regions() numbers them."""
    image = _photo(path)
    if image is None:
        return []
    width, height = image.size
    windows = []
    for number, box in enumerate(_grid(image.size, columns, rows)):
        row, column = divmod(number, columns)
        for share in WINDOW_OVERLAPS:
            for right, down in ((1, 0), (0, 1)):
                if column + right >= columns or row + down >= rows:
                    continue
                dx = round(right * (box[2] - box[0]) * (1 - share))
                dy = round(down * (box[3] - box[1]) * (1 - share))
                moved = (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)
                if moved[2] > width or moved[3] > height:
                    continue
                window = image.crop(moved)
                window.thumbnail((REGION_SIZE, REGION_SIZE))
                windows.append((window, number, (row + down) * columns + column + right))
    return windows


def match_window(task) -> list[str]:
    """In a worker: the victims a near-neighbour window matches."""
    global _worker_matcher
    from matcher.bank import VictimBank
    from matcher.decode import UnreadableImage
    from matcher.hasher import ImageHasher
    from matcher.match import Matcher
    from matcher.signals import SIGNAL_TYPES

    window, algorithms = task
    if _worker_matcher is None:
        hasher = ImageHasher([SIGNAL_TYPES[n] for n in algorithms])
        _worker_matcher = Matcher(VictimBank.open(), hasher)
    try:
        return [m.victim for m in _worker_matcher.match_bytes(encode(window, quality=88))]
    except UnreadableImage:
        return []


_worker_matcher = None


def match_edited_copies(task) -> list[tuple[str, dict]]:
    """In a worker: the region itself, then each edit of it, matched.

    Returns (edit name, {victim: (algorithm, distance, view)}) pairs, "original" first.
    """
    global _worker_matcher
    from matcher.bank import VictimBank
    from matcher.decode import UnreadableImage
    from matcher.hasher import ImageHasher
    from matcher.match import Matcher
    from matcher.signals import SIGNAL_TYPES

    number, _, _, region, edit_names, algorithms, library = task
    if _worker_matcher is None:
        hasher = ImageHasher([SIGNAL_TYPES[n] for n in algorithms])
        _worker_matcher = Matcher(VictimBank.open(), hasher)
    rng = np.random.default_rng(20261127 + number)
    results = []
    for name in ["original", *edit_names]:
        if name == "original":
            edited = region
        elif library:
            edited, level = library_copy(region, name, number)
            name = f"{name}:{level}"
        else:
            edited = EDITS[name](region, rng)
        data = encode(edited, quality=88)
        try:
            found = {m.victim: (m.algorithm, m.distance, m.view)
                     for m in _worker_matcher.match_bytes(data)}
        except UnreadableImage:
            found = {}
        results.append((name, found))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="3x2", help="regions per photo, COLUMNSxROWS")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    parser.add_argument("--algorithms", default="", help="comma list (default: all)")
    parser.add_argument("--edits", default="", help="comma list of edits (default: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--library", action="store_true",
                        help="the frozen split's library edit families, drawn afresh on these "
                             "photos (the tuning split of the local stage)")
    args = parser.parse_args()
    columns, rows = (int(n) for n in args.grid.lower().split("x"))

    home = tempfile.mkdtemp(prefix="haechi-bench-")
    os.environ["HAECHI_HOME"] = home
    os.environ.pop("DATABASE_URL", None)
    from matcher.bank import VictimBank
    from matcher.decode import UnreadableImage
    from matcher.hasher import ImageHasher
    from matcher.signals import SIGNAL_TYPES

    names = [n for n in args.algorithms.split(",") if n] or list(SIGNAL_TYPES)
    hasher = ImageHasher([SIGNAL_TYPES[n] for n in names])
    bank = VictimBank.open()
    every = library_edits() if args.library else EDITS
    edits = {n: every[n] for n in (args.edits.split(",") if args.edits else every)}

    photos = wallpaper_files()[: args.limit or None]
    corpus: list[tuple[str, bool, Image.Image]] = []
    skipped = 0
    started = time.perf_counter()
    # Which regions are held out is decided over every region cut, refused or not, so runs
    # with other signals (which refuse other regions) hold out the same ones.
    cut = 0
    global_held: set[str] = set()  # regions a global hash (PDQ, pHash) holds
    for photo in photos:
        for number, region in enumerate(regions(photo, columns, rows)):
            victim = f"{photo.stem}#{number}"
            registered = cut % HOLD_OUT != HOLD_OUT - 1
            cut += 1
            if registered:
                try:
                    records = hasher.registration_hashes(encode(region, quality=95),
                                                         local="local" in names)
                except UnreadableImage:
                    skipped += 1  # too plain or unstable to register (flat, stripes)
                    continue
                bank.add(victim, records, source=photo.name)
                if {r.algorithm for r in records} & {"pdq", "phash"}:
                    global_held.add(victim)
            corpus.append((victim, registered, region))
    register_seconds = time.perf_counter() - started

    bank.save()
    per_edit = {name: {"n": 0, "caught": 0} for name in edits}
    # The same, over the regions a global hash holds: what compares with a run without local.
    per_edit_global = {name: {"n": 0, "caught": 0} for name in edits}
    false_matches = []
    misses = []
    per_photo: dict[str, list[int]] = {}
    by_local: Counter = Counter()  # copies only the local stage (the cascade's second) found
    started = time.perf_counter()
    tasks = [(number, victim, registered, region, list(edits), names, args.library)
             for number, (victim, registered, region) in enumerate(corpus)]
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        outcomes = list(pool.imap(match_edited_copies, tasks, chunksize=2))
    # Regions whose unedited originals already match each other are the same picture twice in
    # the corpus (a repeating pattern, a mirror-symmetric design): edits cannot be told apart
    # there, so their cross matches are reported on their own, not as false matches.
    twins = {frozenset((family(task[1]), family(other)))
             for task, (original, *_) in zip(tasks, outcomes, strict=True)
             for other in original[1] if family(other) != family(task[1])}
    twin_matches = []
    mild_names = set(MILD_EDITS)
    if args.library:  # each copy is mild or hard by the drawn edit, as in the frozen split
        per_edit = {f"{name}:{level}": {"n": 0, "caught": 0}
                    for name in edits for level in ("mild", "hard")}
        per_edit_global = {name: {"n": 0, "caught": 0} for name in per_edit}
        mild_names = {name for name in per_edit if name.endswith(":mild")}
    for (_, victim, registered, *_), (_, *results) in zip(tasks, outcomes, strict=True):
        for name, found in results:
            if registered:
                per_edit[name]["n"] += 1
                per_edit[name]["caught"] += victim in found
                if victim in global_held:
                    per_edit_global[name]["n"] += 1
                    per_edit_global[name]["caught"] += victim in found
                if victim not in found:
                    misses.append(f"{victim}/{name}")
                elif found[victim][0] == "local":
                    by_local[name.partition(":")[0]] += 1
                tally = per_photo.setdefault(victim.partition("#")[0], [0, 0])
                tally[0] += victim in found
                tally[1] += 1
            for other, (algorithm, distance, view) in found.items():
                if family(other) != family(victim):
                    query = f"{victim}{'' if registered else ' (held out)'}/{name}"
                    match = {"query": query, "matched": other, "algorithm": algorithm,
                             "distance": distance, "view": view}
                    pair = frozenset((family(victim), family(other)))
                    (twin_matches if pair in twins else false_matches).append(match)
    near = {"windows": 0, "false_matches": 0, "matched_the_region_shown": 0, "examples": []}
    if args.library:
        windows = [(photo, window, overlapped, shown) for photo in photos
                   for window, overlapped, shown in neighbour_windows(photo, columns, rows)]
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            answers = pool.map(match_window, [(w, names) for _, w, _, _ in windows],
                               chunksize=4)
        for (photo, _, overlapped, shown), found in zip(windows, answers, strict=True):
            little, most = (family(f"{photo.stem}#{n}") for n in (overlapped, shown))
            near["windows"] += 1
            near["matched_the_region_shown"] += any(family(v) == most for v in found)
            if little != most and any(family(v) == little for v in found):
                near["false_matches"] += 1
                near["examples"].append(f"{photo.stem}#{overlapped} <- window of "
                                        f"{photo.stem}#{shown}")
        near["examples"] = near["examples"][:20]
    match_seconds = time.perf_counter() - started

    if args.library:  # a family's figure is over both levels; empty levels are dropped
        for tally in (per_edit, per_edit_global):
            for name in edits:
                both = [tally[f"{name}:{level}"] for level in ("mild", "hard")]
                tally[name] = {"n": sum(t["n"] for t in both),
                               "caught": sum(t["caught"] for t in both)}
    every_copy = list(edits)
    mild_copies = ([n for n in per_edit if n in mild_names] if args.library
                   else [e for e in edits if e in MILD_EDITS])

    def recall(selected: list[str], tally: dict | None = None) -> float:
        tally = per_edit if tally is None else tally
        n = sum(tally[e]["n"] for e in selected)
        return round(sum(tally[e]["caught"] for e in selected) / n, 4) if n else 0.0

    result = {
        "photos": len(photos),
        "registered_regions": sum(1 for _, registered, _ in corpus if registered),
        "held_out_regions": sum(1 for _, registered, _ in corpus if not registered),
        "refused_at_registration": skipped,
        "edits": len(edits),
        "edit_set": "library (tuning split)" if args.library else "testkit/edits.py",
        "queries": len(corpus) * len(edits),
        "algorithms": names,
        "recall_per_edit": {e: recall([e]) for e in edits},
        **({"recall_per_edit_level": {e: recall([e]) for e in per_edit if ":" in e
                                      and per_edit[e]["n"]}} if args.library else {}),
        "recall_mild": recall(mild_copies),
        "recall_overall": recall(every_copy),
        "caught_by_local_stage": {e: by_local[e] for e in edits if by_local[e]},
        "regions_held_by_a_global_hash": len(global_held),
        "recall_per_edit_global_held": {e: recall([e], per_edit_global) for e in edits},
        "recall_mild_global_held": recall(mild_copies, per_edit_global),
        "recall_overall_global_held": recall(every_copy, per_edit_global),
        "false_matches": len(false_matches),
        "false_matches_by_algorithm": dict(Counter(f["algorithm"] for f in false_matches)),
        "false_matches_by_victim": dict(
            Counter(f["matched"] for f in false_matches).most_common(15)
        ),
        "recall_per_photo": {photo: round(caught / n, 3) for photo, (caught, n) in
                             sorted(per_photo.items())},
        "false_match_examples": false_matches[:20],
        **({"near_neighbour_windows": near} if args.library else {}),
        "indistinguishable_region_pairs": sorted("~".join(sorted(pair)) for pair in twins),
        "matches_between_indistinguishable_regions": len(twin_matches),
        "missed_examples": misses[:60],
        "seconds_register": round(register_seconds, 1),
        "seconds_match": round(match_seconds, 1),
    }
    for name in edits:
        print(f"{name:<28} recall {result['recall_per_edit'][name]:.3f}", file=sys.stderr)
    print(f"mild {result['recall_mild']:.4f}  overall {result['recall_overall']:.4f}  "
          f"false matches {result['false_matches']}", file=sys.stderr)
    if args.library:
        print(f"near-neighbour windows: {near['false_matches']} of {near['windows']} matched "
              f"the region they overlap by {min(WINDOW_OVERLAPS):.0%}-"
              f"{max(WINDOW_OVERLAPS):.0%}", file=sys.stderr)
    print(f"over the {len(global_held)} regions a global hash holds: mild "
          f"{result['recall_mild_global_held']:.4f}  overall "
          f"{result['recall_overall_global_held']:.4f}", file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
