"""In-place scrubbing of an EXIF block (a TIFF structure): GPS and hostile text removed.

Pure module (stdlib only). The block keeps its length and every offset in it, so orientation,
maker notes and the embedded thumbnail survive byte for byte; what is removed becomes zeros.
"""

from __future__ import annotations

import struct

from labeling.ingest.markup import is_hostile

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
INTEROP_IFD = 0xA005
# Bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE,
# UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE, IFD).
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
# Types that can hold text a browser would read: BYTE, ASCII, UNDEFINED (UserComment, XP*).
_TEXT_TYPES = frozenset({1, 2, 7})
# IFD0, the thumbnail's IFD1, Exif, Interop and GPS; more is a loop or a crafted file.
_MAX_IFDS = 8


class ExifUnreadable(ValueError):
    """The block is not a TIFF structure whose directories all lie inside it."""


def scrub_exif(block: bytes, *, keep_gps: bool) -> bytes:
    """The EXIF block (starting at its TIFF header) with its GPS directory emptied, unless
    keep_gps, and every text value holding markup, script or a ZIP record zeroed."""
    if block[:4] not in (b"II*\x00", b"MM\x00*"):
        raise ExifUnreadable("no TIFF header")
    data = bytearray(block)
    endian = "<" if data[:2] == b"II" else ">"
    pending = [(_unpack(data, endian, "I", 4), True)]
    seen: set[int] = set()
    while pending:
        offset, chained = pending.pop()
        if offset == 0 or offset in seen:
            continue
        if len(seen) == _MAX_IFDS:
            raise ExifUnreadable("too many directories")
        seen.add(offset)
        entries, following = _read_ifd(data, endian, offset)
        for tag, kind, size, at in entries:
            if tag in (EXIF_IFD, INTEROP_IFD, GPS_IFD) and size == 4:
                pointer = _unpack(data, endian, "I", at)
                if tag == GPS_IFD and not keep_gps:
                    _empty_ifd(data, endian, pointer)
                else:
                    pending.append((pointer, False))
            elif kind in _TEXT_TYPES and size > 4 and is_hostile(bytes(data[at : at + size])):
                data[at : at + size] = bytes(size)
        if chained:
            pending.append((following, True))
    return bytes(data)


def _unpack(data: bytearray, endian: str, fmt: str, at: int) -> int:
    if at < 0 or at + struct.calcsize(fmt) > len(data):
        raise ExifUnreadable(f"offset {at} is outside the block")
    return int(struct.unpack_from(endian + fmt, data, at)[0])


def _read_ifd(
    data: bytearray, endian: str, offset: int
) -> tuple[list[tuple[int, int, int, int]], int]:
    """(tag, type, value size in bytes, value offset) per entry, and the next IFD's offset."""
    count = _unpack(data, endian, "H", offset)
    entries = []
    for index in range(count):
        at = offset + 2 + 12 * index
        tag, kind = _unpack(data, endian, "H", at), _unpack(data, endian, "H", at + 2)
        size = _TYPE_SIZES.get(kind, 1) * _unpack(data, endian, "I", at + 4)
        value_at = at + 8 if size <= 4 else _unpack(data, endian, "I", at + 8)
        if value_at + size > len(data):
            raise ExifUnreadable(f"tag {tag:#06x} points outside the block")
        entries.append((tag, kind, size, value_at))
    return entries, _unpack(data, endian, "I", offset + 2 + 12 * count)


def _empty_ifd(data: bytearray, endian: str, offset: int) -> None:
    """Zero a directory's out-of-line values and entries, leaving a valid empty directory."""
    entries, _ = _read_ifd(data, endian, offset)
    for _tag, _kind, size, at in entries:
        if size > 4:
            data[at : at + size] = bytes(size)
    end = offset + 2 + 12 * len(entries) + 4
    data[offset:end] = bytes(end - offset)
