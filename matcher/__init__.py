"""Matcher: hashes stored media and searches it against the victim hash bank.

Sits after crawl and store, before takedown: it turns bytes into match events.
"""
