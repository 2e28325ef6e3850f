"""Verification's descriptor matching is OpenCV's brute-force knnMatch(k=2), done by FAISS:
the same two distances for every query descriptor and the same nearest row wherever Lowe's
ratio test could keep the match, on real ORB descriptors (repeated ones included, for ties)."""

from __future__ import annotations

import cv2
import numpy as np

from matcher.signals.local import describe
from matcher.verification import nearest_two
from testkit.synthetic import synthetic_picture


def _descriptors(seed: int, features: int) -> np.ndarray:
    grey = np.asarray(synthetic_picture(seed=seed).convert("L"))
    return describe(grey, features).descriptors


def test_nearest_two_is_what_opencv_brute_force_matching_finds() -> None:
    registered = _descriptors(1, 500)
    # A copy's descriptors, another picture's, and exact repeats (ties between rows).
    queries = np.concatenate([_descriptors(1, 800), _descriptors(2, 800), registered[:40]])
    twice = np.concatenate([registered, registered[:40]])
    for stored in (registered, twice):
        pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(queries, stored, k=2)
        nearest, second, rows = nearest_two(queries, stored)
        assert nearest.tolist() == [int(p[0].distance) for p in pairs]
        assert second.tolist() == [int(p[1].distance) for p in pairs]
        unique = nearest < second
        assert unique.sum() > 100 and (~unique).sum() >= 40  # both kinds are exercised
        assert rows[unique].tolist() == [p[0].trainIdx for p, u in zip(pairs, unique, strict=True)
                                         if u]
