"""Takedown: cases opened from match events, evidence, notices, review, sending and tracking."""
