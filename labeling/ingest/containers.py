"""The stored original of a JPEG, PNG, WebP or GIF: its own blocks, up to its own end.

Pure module (stdlib only). These formats are rewritten block by block rather than re-encoded:
the compressed pixel data is copied byte for byte (JPEG cannot be re-encoded without loss, and
copying is lossless and cheap for the rest), while

* anything after the format's end marker is dropped (an appended script, ZIP or video);
* free-text comments are dropped (JPEG COM, PNG tEXt/zTXt/iTXt, GIF comment extensions);
* EXIF keeps its orientation and camera data but loses its GPS directory (unless keep_gps) and
  any text holding markup (see exif.scrub_exif);
* XMP and IPTC, which can say where a picture was taken in many vocabularies, are kept only
  with keep_gps;
* any other metadata block holding markup, script or a ZIP record is dropped.

``None`` from a rewriter means the file never reaches its end marker (truncated).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable

from labeling.ingest.exif import ExifUnreadable, scrub_exif
from labeling.ingest.markup import is_hostile

# A marker in JPEG data: 0xFF followed by anything but stuffing (0x00), restart markers
# (0xD0-0xD7, which live inside entropy-coded data) or fill bytes (0xFF).
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
_JPEG_SOS, _JPEG_COM, _JPEG_APP1, _JPEG_APP2, _JPEG_APP13 = 0xDA, 0xFE, 0xE1, 0xE2, 0xED
_EXIF_PREFIX = b"Exif\x00\x00"
_XMP_PREFIXES = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_PNG_TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_WEBP_IMAGE = frozenset({b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"})
# VP8X flag bits for the metadata chunks a rewrite may drop.
_WEBP_EXIF_FLAG, _WEBP_XMP_FLAG = 0x08, 0x04
# GIF application extensions that only say how to loop an animation.
_GIF_LOOP_APPS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


def jpeg_original(data: bytes, keep_gps: bool) -> bytes | None:
    """SOI, the header segments kept, then the scans up to the first stream's EOI.

    Multi-picture (MPO) files keep their first picture only: the MPF index (APP2) that points
    at the others is dropped with them."""
    end = _jpeg_end(data, 0)
    if end is None:
        return None
    parts, pos = [data[:2]], 2
    while pos < end:
        while data.startswith(b"\xff\xff", pos):  # fill bytes before a marker
            pos += 1
        if _JPEG_MARKER.match(data, pos) is None:
            return None
        code = data[pos + 1]
        if code == _JPEG_SOS:
            parts.extend(_jpeg_scans(data, pos, end))
            break
        if code in _JPEG_STANDALONE:
            parts.append(data[pos : pos + 2])
            pos += 2
            continue
        length = struct.unpack_from(">H", data, pos + 2)[0] if pos + 4 <= end else 0
        if length < 2:
            return None
        segment = _jpeg_segment(code, data[pos + 4 : pos + 2 + length], keep_gps)
        if segment is not None:
            parts.append(data[pos : pos + 4] + segment)
        pos += 2 + length
    return b"".join(parts)


def _jpeg_scans(data: bytes, pos: int, end: int) -> list[bytes]:
    """The scans from the first SOS (at pos) to just past EOI (end), less the comment and
    application segments that a progressive JPEG may carry between its scans (a comment, or
    EXIF with GPS, hidden there would otherwise be stored)."""
    parts, kept_from = [], pos
    while (marker := _JPEG_MARKER.search(data, pos, end)) is not None:
        at, code, pos = marker.start(), data[marker.end() - 1], marker.end()
        if code == 0xD9 or pos + 2 > end:
            break
        if code in _JPEG_STANDALONE:
            continue
        (length,) = struct.unpack_from(">H", data, pos)
        if code == _JPEG_COM or 0xE0 <= code <= 0xEF:
            parts.append(data[kept_from:at])
            kept_from = pos + length
        pos += length
    parts.append(data[kept_from:end])
    return parts


def _jpeg_segment(code: int, payload: bytes, keep_gps: bool) -> bytes | None:
    """A header segment's payload as stored (same length), or None to drop the segment."""
    if code == _JPEG_COM:
        return None
    if code == _JPEG_APP1 and payload.startswith(_EXIF_PREFIX):
        tiff = _scrubbed(payload[len(_EXIF_PREFIX) :], keep_gps)
        return None if tiff is None else _EXIF_PREFIX + tiff
    location = code == _JPEG_APP13 or (code == _JPEG_APP1 and payload.startswith(_XMP_PREFIXES))
    if (location and not keep_gps) or (code == _JPEG_APP2 and payload.startswith(b"MPF\x00")):
        return None
    is_app = 0xE0 <= code <= 0xEF
    return None if is_app and is_hostile(payload) else payload


def _jpeg_end(data: bytes, start: int) -> int | None:
    """Offset just past the EOI marker of the JPEG stream starting at start (SOI there).

    Segments are skipped by their length, so an EXIF thumbnail's own EOI does not end the
    walk; entropy-coded data after SOS is skipped to the next real marker.
    """
    pos = start + 2
    while True:
        marker = _JPEG_MARKER.search(data, pos)
        if marker is None:
            return None
        code = data[marker.end() - 1]
        pos = marker.end()
        if code == 0xD9:
            return pos
        if code in _JPEG_STANDALONE:
            continue
        if pos + 2 > len(data):
            return None
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            return None
        pos += length


def png_original(data: bytes, keep_gps: bool) -> bytes | None:
    """The signature and the chunks kept, up to and including IEND."""
    parts, pos = [data[:8]], 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, end = data[pos + 4 : pos + 8], pos + 12 + length
        if end > len(data):
            return None
        body = data[pos + 8 : end - 4]
        if kind == b"eXIf":
            tiff = _scrubbed(body, keep_gps)
            if tiff is not None:
                parts.append(_png_chunk(kind, tiff))
        elif kind not in _PNG_TEXT and not (kind[:1].islower() and is_hostile(body)):
            parts.append(data[pos:end])
        if kind == b"IEND":
            return b"".join(parts)
        pos = end
    return None


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def webp_original(data: bytes, keep_gps: bool) -> bytes | None:
    """The RIFF container cut to its declared size, metadata chunks filtered, size rewritten."""
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = 8 + riff_size
    if end > len(data):
        return None
    chunks, dropped, pos = [], 0, 12
    while pos + 8 <= end:
        kind, (size,) = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)
        if pos + 8 + size > end:
            return None
        body = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
        kept, flag = _webp_chunk(kind, body, keep_gps)
        dropped |= flag if kept is None else 0
        if kept is not None:
            chunks.append([kind, kept])
    for chunk in chunks:
        if chunk[0] == b"VP8X" and chunk[1]:
            chunk[1] = bytes([chunk[1][0] & ~dropped]) + chunk[1][1:]
    body = b"WEBP" + b"".join(
        kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)
        for kind, payload in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _webp_chunk(kind: bytes, body: bytes, keep_gps: bool) -> tuple[bytes | None, int]:
    """A chunk's payload as stored, or None with the VP8X flag to clear when it is dropped."""
    if kind == b"EXIF":
        prefix = _EXIF_PREFIX if body.startswith(_EXIF_PREFIX) else b""
        tiff = _scrubbed(body[len(prefix) :], keep_gps)
        return (None, _WEBP_EXIF_FLAG) if tiff is None else (prefix + tiff, 0)
    if kind == b"XMP ":
        return (body, 0) if keep_gps and not is_hostile(body) else (None, _WEBP_XMP_FLAG)
    if kind not in _WEBP_IMAGE and is_hostile(body):
        return None, 0
    return body, 0


def gif_original(data: bytes, keep_gps: bool) -> bytes | None:
    """Header, screen descriptor and colour table, the blocks kept, and the trailer (0x3B).

    GIF has no location metadata; keep_gps is accepted for a uniform signature."""
    del keep_gps
    pos = 13 + _colour_table_size(data[10]) if len(data) >= 13 else len(data) + 1
    parts = [data[:pos]]
    while pos < len(data):
        introducer = data[pos]
        if introducer == 0x3B:
            parts.append(b"\x3b")
            return b"".join(parts)
        if introducer == 0x2C and pos + 10 <= len(data):
            start = pos + 10 + _colour_table_size(data[pos + 9]) + 1
            end = _sub_blocks_end(data, start)
            keep = True
        elif introducer == 0x21 and pos + 2 <= len(data):
            end = _sub_blocks_end(data, pos + 2)
            keep = end is not None and _keep_gif_extension(data[pos + 1], data[pos + 2 : end])
        else:
            return None
        if end is None:
            return None
        if keep:
            parts.append(data[pos:end])
        pos = end
    return None


def _colour_table_size(packed: int) -> int:
    """Bytes of the colour table that a GIF descriptor's packed field announces."""
    return 3 << ((packed & 0x07) + 1) if packed & 0x80 else 0


def _sub_blocks_end(data: bytes, pos: int) -> int | None:
    """Offset just past a chain of GIF data sub-blocks and its zero-length terminator."""
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    return None


def _keep_gif_extension(label: int, blocks: bytes) -> bool:
    """Graphic control and plain-text extensions stay; comments go; application extensions
    stay only to loop an animation; anything holding markup goes."""
    if label == 0xFE:
        return False
    if label == 0xFF and not blocks[1:12].startswith(_GIF_LOOP_APPS):
        return False
    return not is_hostile(blocks)


def _scrubbed(tiff: bytes, keep_gps: bool) -> bytes | None:
    """scrub_exif, or None (drop the block) when it cannot be read: GPS removal is not sure."""
    try:
        return scrub_exif(tiff, keep_gps=keep_gps)
    except ExifUnreadable:
        return None


REWRITERS: dict[str, Callable[[bytes, bool], bytes | None]] = {
    "JPEG": jpeg_original,
    "PNG": png_original,
    "WEBP": webp_original,
    "GIF": gif_original,
}
