"""Markup, script and archive signatures that must never be in a stored or served image.

Pure module (stdlib only). Searched in a lower-cased copy (several times faster than
re.IGNORECASE).
"""

from __future__ import annotations

import re

# A tag name must end in whitespace, '/' or '>', as a browser needs, which keeps random bytes
# in compressed pixel data from matching by chance.
_MARKUP_TAG = re.compile(rb"<(?:script|html|svg|iframe|body)[\s/>]|<\?php\s")
_SCRIPT_URL = re.compile(rb"javascript:")
# A ZIP local file header or end-of-central-directory record. A bare 4-byte signature turns up
# by chance in a few photos per thousand, so the fields after it must make sense too: version
# needed <= 6.3 and a known compression method; a single-disk archive with equal entry counts.
_ZIP_RECORD = re.compile(
    rb"PK\x03\x04[\x00-\x3f]\x00..[\x00\x01\x06\x08\x09\x0c\x0e\x13\x5d\x5f\x61-\x63]\x00"
    rb"|PK\x05\x06\x00\x00\x00\x00(..)\1",
    re.DOTALL,
)


def find_markup(data: bytes) -> tuple[int, str] | None:
    """Offset and text, as written, of the first markup or script marker, case-insensitively."""
    lowered = data.lower()
    found = [m for m in (_MARKUP_TAG.search(lowered), _SCRIPT_URL.search(lowered)) if m]
    if not found:
        return None
    first = min(found, key=lambda match: match.start())
    return first.start(), data[first.start() : first.end()].decode("ascii").rstrip()


def has_zip(data: bytes) -> bool:
    """True when a ZIP record (a JAR, say) is embedded anywhere in data."""
    return _ZIP_RECORD.search(data) is not None


def is_hostile(data: bytes) -> bool:
    """True when data holds markup, script or a ZIP record: a metadata block to drop."""
    return find_markup(data) is not None or has_zip(data)
