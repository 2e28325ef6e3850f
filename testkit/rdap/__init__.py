"""A local RDAP server (RFC 9083 JSON) for the tests of takedown/rdap.py: registries,
registrars and hostile answers on loopback, with a bootstrap file pointing at them."""
