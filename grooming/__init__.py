"""Grooming early warning: chat exports in, a score per speaker and alerts to support agencies
out, before any image exists.

Imported chats are reduced to one schema with pseudonymised speakers (`schema`, `importers`,
`pseudonyms`), normalised (`normalise`), tagged message by message with grooming stages by rules
and an embedding classifier (`cues`, `classifier`), and scored per speaker as the conversation
goes (`scoring`); an alert carries its explanation (`alerts`), and only flagged excerpts are
kept, for a limited time (`excerpts`).
"""
