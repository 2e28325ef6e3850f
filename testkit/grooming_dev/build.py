"""Render the grooming dev split's scripts (``source/*.txt``) into app export formats.

The dev split uses the frozen eval's renderer and script syntax (see
``testkit/grooming_eval/build.py``), on its own folder: ``chats/`` and ``labels.json`` here.
Unlike the frozen eval, this split is for tuning and training.
"""

from __future__ import annotations

from pathlib import Path

from testkit.grooming_eval.build import main

if __name__ == "__main__":
    main(Path(__file__).resolve().parent)
