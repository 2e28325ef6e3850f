"""Render the grooming training split's scripts (``source/*.txt``) into app export formats.

The frozen eval's renderer and script syntax (``testkit/grooming_eval/build.py``), with line
annotations: a message line may end in two spaces and the signals its words carry, in braces
(``are your parents home?  {alone}``), which go into each label's ``signals`` (by real-message
number from 1) and are never rendered. This split trains the models; the dev split judges
them while they are tuned; the frozen eval only reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run as a script from anywhere

from testkit.grooming_eval.build import main  # noqa: E402

if __name__ == "__main__":
    main(HERE, annotated=True)
