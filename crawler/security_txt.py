"""Reading RFC 9116 security.txt: whom a site asks to be contacted, and in which languages.

Everything in the file is written by the site a notice is about, which may be the party that
re-posts a victim's images. So nothing is taken as it comes: a Contact is kept only if it is
one bounded line without control characters, a language only if it is shaped like a BCP 47 tag,
and a mailto Contact yields a recipient only if it names exactly one plain address
(`mailto_address`). A mailto naming several addresses, or carrying `to`, `cc` or `bcc`
headers, is refused outright rather than trimmed to its first address: a site that tries to
copy a victim's notice to someone else has told us its Contact cannot be trusted at all.

The address rule (`email_address`) is the one every recipient passes, whoever named it.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import unquote

# C0 controls and DEL. A NUL in particular is refused by PostgreSQL text columns, and a CR or
# LF in anything that reaches an e-mail header would start a header of the site's choosing.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

# RFC 9116 files list a handful of Contact lines; these bounds keep a hostile file from
# filling a row with thousands of values, while leaving far more than any real file uses.
MAX_CONTACTS = 8
MAX_CONTACT_CHARS = 2048  # the longest URL web servers and search engines commonly accept
MAX_PREFERRED_LANGUAGES = 16
# RFC 5646 section 4.4.1: 35 characters hold every tag an implementation needs to keep.
MAX_LANGUAGE_TAG_CHARS = 35
_LANGUAGE_TAG = re.compile(r"^[a-z]{1,8}(-[a-z0-9]{1,8})*$")

# RFC 5321 section 4.5.3.1: a path is at most 256 octets including its angle brackets, so an
# address at most 254; a local part at most 64 octets, a domain at most 255 (253 written).
MAX_ADDRESS_CHARS = 254
MAX_LOCAL_PART_CHARS = 64
MAX_DOMAIN_CHARS = 253
# RFC 5322 dot-atom of atext: no quoted local parts, no comments, no folding white space. A
# quoted local part may hold commas, spaces and '@', the raw material of a disguised list.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Headers of a mailto URI (RFC 6068) that add no recipient; they are ignored, never used.
HARMLESS_MAILTO_HEADERS = frozenset({"subject", "body"})


class AddressRefused(ValueError):
    """An address or mailto Contact that cannot be a notice's recipient; says why."""


# Unicode categories a name shown to reviewers and written into a notice's Subject must not
# hold: controls, line and paragraph separators (Python's e-mail headers end a line at NEL,
# U+2028 and U+2029 too) and format characters (bidi overrides such as U+202E and zero-width
# marks, which make a name read as another in the review app).
NOT_IN_A_NAME = frozenset({"Cc", "Zl", "Zp", "Cf"})


def plain_line(text: str) -> bool:
    """Whether `text` is one line that shows as what it says (see NOT_IN_A_NAME)."""
    return not any(unicodedata.category(c) in NOT_IN_A_NAME for c in text)


def language_tag(value: object) -> str | None:
    """`value` as a lower-case BCP 47-shaped tag (`ko`, `en-us`, `zh-hant-tw`), else None."""
    if not isinstance(value, str):
        return None
    tag = value.strip().lower().replace("_", "-")
    if len(tag) > MAX_LANGUAGE_TAG_CHARS or not _LANGUAGE_TAG.match(tag):
        return None
    return tag


def contact_value(value: object) -> str | None:
    """A Contact as it may be stored: one line of bounded length, else None.

    Not shortened: a cut URI names something else than the site wrote.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_CONTACT_CHARS or CONTROL_CHARACTERS.search(value):
        return None
    return value


def bounded_contacts(values: object) -> list[str]:
    """The storable Contacts among `values`, in order, at most MAX_CONTACTS of them."""
    if not isinstance(values, list | tuple):
        return []
    kept = [c for c in (contact_value(v) for v in values) if c is not None]
    return kept[:MAX_CONTACTS]


def bounded_languages(values: object) -> list[str]:
    """The well-formed language tags among `values`, in order, without repeats, bounded."""
    if not isinstance(values, list | tuple):
        return []
    kept = dict.fromkeys(t for t in (language_tag(v) for v in values) if t is not None)
    return list(kept)[:MAX_PREFERRED_LANGUAGES]


def parse_security_txt(text: str) -> tuple[list[str], list[str]]:
    """The Contact values and Preferred-Languages tags of a security.txt, in file order,
    without the values no table should hold (see `contact_value`, `language_tag`).

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
            languages.extend(value.split(","))
    return bounded_contacts(contacts), bounded_languages(languages)


def email_address(text: str, *, address_literal: bool = False) -> str:
    """`text` as one plain address (`local@domain`, domain in lower-case ASCII, IDNA-encoded if
    it was not), or AddressRefused saying why not.

    Accepted: an RFC 5322 dot-atom local part of ASCII characters and a domain of two or more
    LDH labels (or an RFC 5321 address literal such as `[192.0.2.1]` when `address_literal`:
    only for addresses Haechi builds from a crawled site's own IP address, never for one a site
    or an operator writes, which could steer the mail relay to an internal host). Refused:
    lists, display names, quoted or non-ASCII local parts, comments, control characters.
    """
    if not isinstance(text, str):
        raise AddressRefused("not text")
    address = text.strip()
    if not address:
        raise AddressRefused("empty")
    if len(address) > MAX_ADDRESS_CHARS:
        raise AddressRefused(f"longer than {MAX_ADDRESS_CHARS} characters")
    if CONTROL_CHARACTERS.search(address):
        raise AddressRefused("contains control characters")
    if "," in address or ";" in address:
        raise AddressRefused("more than one address")
    local, at, domain = address.rpartition("@")
    if not at or not local:
        raise AddressRefused("not of the form local@domain")
    if len(local) > MAX_LOCAL_PART_CHARS or not _LOCAL_PART.match(local):
        raise AddressRefused("its local part is not a plain ASCII dot-atom")
    return f"{local}@{_mail_domain(domain, address_literal)}"


def _mail_domain(domain: str, address_literal: bool) -> str:
    if domain.startswith("[") and domain.endswith("]"):
        if not address_literal:
            raise AddressRefused("an address literal (a bare IP address) as its domain")
        literal = domain[1:-1]
        version = 6 if literal[:5].lower() == "ipv6:" else 4
        try:
            ip = ipaddress.ip_address(literal[5:] if version == 6 else literal)
        except ValueError:
            raise AddressRefused("a malformed address literal") from None
        if ip.version != version:
            raise AddressRefused("a malformed address literal")
        return f"[IPv6:{ip.compressed}]" if version == 6 else f"[{ip}]"
    try:
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise AddressRefused("its domain cannot be IDNA-encoded") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > MAX_DOMAIN_CHARS or len(labels) < 2:
        raise AddressRefused("its domain is not a fully qualified host name")
    if not all(_DOMAIN_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise AddressRefused("its domain is not a host name")
    return ascii_domain


def mailto_address(contact: str) -> str:
    """The one address of a security.txt `mailto:` Contact, or AddressRefused.

    RFC 6068 allows a list and headers; a recipient is one address, so a Contact naming more
    than one (`mailto:a@x,b@y`, or a `to`, `cc` or `bcc` header) is refused as a whole, and so
    is any header but the ignored `subject` and `body`. Percent-encoding is decoded before the
    address is checked, so `%2C` and `%40` cannot smuggle a second address past the check.
    """
    if not contact.lower().startswith("mailto:"):
        raise AddressRefused("not a mailto: URI")
    to, _, headers = contact[len("mailto:"):].partition("?")
    for field in filter(None, headers.split("&")):
        name = unquote(field.partition("=")[0]).strip().lower()
        if name not in HARMLESS_MAILTO_HEADERS:
            raise AddressRefused(f"mailto header {name[:20]!r} (only one recipient is taken)")
    return email_address(unquote(to))
