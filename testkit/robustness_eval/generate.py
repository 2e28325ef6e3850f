"""The generator: makes the split's images from ``manifest.json`` into a cache folder.

It checks every photo against the manifest's SHA-256 first (a changed Debian package stops
it), then cuts the victim pictures and distractor bases out of the photos and applies each
query's steps exactly as listed. The same manifest, photos and library versions give the same
bytes. A finished folder holds ``.done`` with the manifest's digest and is reused as it is.

    .venv/bin/python -m testkit.robustness_eval.generate [--photos DIR] [--out DIR] [--workers N]

prints the split folder: ``victims/RVnn.png`` (what the victims register) and
``queries/nnnnn.jpg`` (what is matched), beside a copy of the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from testkit.robustness_eval import MANIFEST, fetch, load_manifest, photos_dir, split_dir
from testkit.robustness_eval import edits as E

Image.MAX_IMAGE_PIXELS = 64_000_000  # the largest photo is 6028 x 4000


def manifest_digest(path: Path = MANIFEST) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cut(photo: Image.Image, box: list[int]) -> Image.Image:
    """A base picture: the box of the photo, RGB, at most MAX_SIDE long."""
    return E.fit(photo.convert("RGB").crop(tuple(box)))


def render(base: Image.Image, query: dict) -> bytes:
    """The bytes of one query file, made from its base picture."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return E.encode(E.apply_steps(base, query["steps"]))


def library_versions() -> dict[str, str]:
    """The versions that make the images now (the manifest's ``made_with`` are the frozen
    ones: other versions give nearly the same images, not the same bytes)."""
    import albumentations
    import cv2
    import numpy
    import PIL

    try:
        from importlib.metadata import version

        augly = version("augly")
    except Exception:
        augly = "?"
    return {"augly": augly, "albumentations": albumentations.__version__,
            "opencv": cv2.__version__, "pillow": PIL.__version__, "numpy": numpy.__version__}


def check_photos(manifest: dict, root: Path) -> list[str]:
    """The photos that are missing or differ from the manifest (none: all as frozen)."""
    from testkit.robustness_eval.plan import sha256

    bad = []
    for s in manifest["sources"]:
        f = root / s["path"]
        if not f.exists():
            bad.append(f"{s['path']}: missing")
        elif sha256(f) != s["sha256"]:
            bad.append(f"{s['path']}: SHA-256 differs from the manifest")
    return bad


def _work(args: tuple) -> int:
    root, out, source, bases, queries = args
    with Image.open(root / source["path"]) as im:
        im.load()
        photo = im.convert("RGB")
    made = 0
    for b in bases:
        img = cut(photo, b["box"])
        if list(img.size) != b["size"]:
            raise RuntimeError(f"{b['id']}: made {img.size}, the manifest says {b['size']}")
        if b["role"] == "victim":
            img.save(out / "victims" / f"{b['victim']}.png", optimize=False)
        for q in queries.get(b["id"], ()):
            (out / q["file"]).write_bytes(render(img, q))
            made += 1
    return made


def generate(out: Path | None = None, photos: Path | None = None, workers: int = 2,
             manifest_path: Path = MANIFEST, log=print) -> Path:
    """Makes (or reuses) the split in ``out`` and returns that folder."""
    out = out or split_dir()
    digest = manifest_digest(manifest_path)
    done = out / ".done"
    if done.exists() and done.read_text().strip() == digest:
        return out
    manifest = load_manifest(manifest_path)
    root = (photos or (photos_dir() if (photos_dir() / ".done").exists() else fetch())) / "root"
    bad = check_photos(manifest, root)
    if bad:
        raise SystemExit("the photos are not the ones the split was frozen on:\n  "
                         + "\n  ".join(bad))
    now = library_versions()
    if now != manifest["made_with"]:
        log(f"warning: the split was frozen with {manifest['made_with']}; making it with {now}"
            " gives nearly the same images, not the same bytes")
    t0 = time.monotonic()
    if out.exists():
        shutil.rmtree(out)
    (out / "victims").mkdir(parents=True)
    (out / "queries").mkdir()
    by_base: dict[str, list[dict]] = {}
    for q in manifest["queries"]:
        by_base.setdefault(q["base"], []).append(q)
    sources = {s["id"]: s for s in manifest["sources"]}
    jobs = []
    for sid, s in sources.items():
        bases = [b for b in manifest["bases"] if b["source"] == sid]
        qs = {b["id"]: by_base.get(b["id"], []) for b in bases}
        jobs.append((root, out, s, bases, qs))
    jobs.sort(key=lambda j: -sum(len(v) for v in j[4].values()))  # longest first
    made = 0
    if workers <= 1:
        for j in jobs:
            made += _work(j)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for n in pool.map(_work, jobs):
                made += n
    shutil.copyfile(manifest_path, out / "manifest.json")
    done.write_text(digest + "\n")
    log(f"made {made} queries and {len(manifest['victims'])} victim pictures in "
        f"{time.monotonic() - t0:.0f} s: {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, help="fetch.sh's folder (default: fetch it)")
    ap.add_argument("--out", type=Path, help="the split folder (default: the user's cache)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args(argv)
    out = generate(args.out, args.photos, args.workers,
                   log=lambda m: print(m, file=sys.stderr))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
