"""The held-out web: a frozen evaluation split of delivery patterns real sites use.

Written without reading the crawler's rules (``crawler/``, ``matcher/``, ``engines/``,
``testkit/testweb/``), so that its figure measures how far the crawler generalises, not how
well it was fitted. Never tune the crawler on it; report its figure as "held-out web".
See README.md beside this file.
"""
