"""The frozen robustness eval split of matching (issue 15): see README.md beside this file.

``manifest.json`` is the split: every victim picture, distractor and query, with the edit
chain, the library of each step, its parameters and seeds, mild/hard, and the expected victim
(or none). ``fetch.sh`` fetches the photos from Debian packages into a cache folder,
``generate.py`` makes the images from the manifest into another, ``plan.py`` wrote the manifest
once. Never tune anything on this split.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
FETCH = HERE / "fetch.sh"


def _cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "haechi" / \
        "robustness-eval"


def photos_dir() -> Path:
    """Where fetch.sh keeps the photos (HAECHI_ROBUSTNESS_PHOTOS, else the user's cache)."""
    env = os.environ.get("HAECHI_ROBUSTNESS_PHOTOS")
    return Path(env) if env else _cache() / "photos"


def split_dir() -> Path:
    """Where the generated split goes (HAECHI_ROBUSTNESS_SPLIT, else the user's cache)."""
    env = os.environ.get("HAECHI_ROBUSTNESS_SPLIT")
    return Path(env) if env else _cache() / "split"


def fetch() -> Path:
    """Runs fetch.sh (a no-op once done) and returns the photo folder."""
    env = dict(os.environ, HAECHI_ROBUSTNESS_PHOTOS=str(photos_dir()))
    out = subprocess.run(["bash", str(FETCH)], check=True, capture_output=True, text=True,
                         env=env)
    return Path(out.stdout.strip().splitlines()[-1])


def load_manifest(path: Path = MANIFEST) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
