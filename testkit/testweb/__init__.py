"""A local test web: many generated gallery sites, each on its own loopback address.

Used by the tests, the demo and the crawl benchmark. Sites are generated on request from a
seed (so 20,000 of them cost no memory), in varied markup, languages and charsets, with traps
and hostile files, and with edited copies of registered (generated) victim pictures planted
among unrelated ones. Nothing here is a real photo of a person.
"""
