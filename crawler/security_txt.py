"""Reading RFC 9116 security.txt: whom a site asks to be contacted, and in which languages."""

from __future__ import annotations


def parse_security_txt(text: str) -> tuple[list[str], list[str]]:
    """The Contact values and Preferred-Languages tags of a security.txt, in file order.

    Signed files (an OpenPGP cleartext signature) are read the same way: the signature lines
    carry no fields of their own.
    """
    contacts: list[str] = []
    languages: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "contact" and value:
            contacts.append(value)
        elif name == "preferred-languages":
            languages.extend(tag.strip().lower() for tag in value.split(",") if tag.strip())
    return contacts, languages
