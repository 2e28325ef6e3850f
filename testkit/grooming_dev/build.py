"""Render the grooming dev split's scripts (``source/*.txt``) into app export formats.

The dev split uses the frozen eval's renderer and script syntax (see
``testkit/grooming_eval/build.py``), on its own folder: ``chats/`` and ``labels.json`` here.
Unlike the frozen eval, this split is for tuning and training.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run as a script from anywhere

from testkit.grooming_eval.build import main  # noqa: E402

if __name__ == "__main__":
    main(HERE, annotated=True)  # a batch may carry line annotations: never rendered
