"""Test fixtures kept out of the wheel: the local test web, edits and synthetic pictures.

Tests, benchmarks and the demo use them from the source tree; an installed Haechi does not ship
them.
"""
