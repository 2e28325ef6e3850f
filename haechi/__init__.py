"""Haechi: finds re-posted intimate images of victims and drives their removal.

This package holds what every stage shares (where data lives, the command line); the stages
themselves are the top-level packages crawler → matcher → takedown.
"""
