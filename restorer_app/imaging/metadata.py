"""EXIF and PNG metadata plumbing the codecs share.

EXIF travels between formats as one TIFF-structured block. TIFF files keep it as tags of the
image itself plus Exif/GPS sub-IFDs; tifffile cannot write IFD-type tags, so those two are
appended after tifffile has written the file and linked in by patching a placeholder entry.
PNG output is encoded by imagecodecs (Pillow has no 16-bit RGB mode), so its metadata chunks
are added here.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import BinaryIO

import tifffile
from PIL import ExifTags, Image, TiffImagePlugin

EXIF_PREFIX = b"Exif\x00\x00"

# Descriptive IFD0 tags that mean the same in a TIFF image IFD and in an EXIF block.
TIFF_EXIF_TEXT_TAGS = (269, 270, 271, 272, 285, 305, 306, 315, 316, 33432)
ORIENTATION = 274
SUB_IFDS = (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo)  # 34665, 34853
# tifffile refuses IFD tags; each is written as the tag code just below it (no standard tag
# lies in between, so the IFD stays sorted) and renamed once its sub-IFD exists.
_PLACEHOLDER = {tag: tag - 1 for tag in SUB_IFDS}


def normalize_exif(data: bytes | None) -> bytes | None:
    """Strip the JPEG APP1 ``Exif\\0\\0`` prefix; empty blocks become None."""
    if not data:
        return None
    data = re.sub(rb"^(Exif\x00\x00)+", b"", bytes(data))
    return data if data[:4] in (b"II*\x00", b"MM\x00*") else None


def exif_from_tiff_ifd(fh: BinaryIO, ifd_offset: int, byteorder: str) -> bytes | None:
    """Build an EXIF block from a TIFF page's descriptive tags and its Exif/GPS sub-IFDs."""
    src = Image.Exif()
    src.endian = byteorder
    src.load_from_fp(fh, ifd_offset)
    out = Image.Exif()
    for tag in (*TIFF_EXIF_TEXT_TAGS, ORIENTATION):
        if tag in src:
            out[tag] = src[tag]
    for tag, ifd in _sub_ifds(src).items():
        out[tag] = ifd
    return normalize_exif(out.tobytes()) if len(out) else None


def _sub_ifds(exif: Image.Exif) -> dict[int, dict]:
    found = {}
    for tag in SUB_IFDS:
        ifd = dict(exif.get_ifd(tag)) if tag in exif else {}
        if ExifTags.IFD.Interop in ifd:
            interop = exif.get_ifd(ExifTags.IFD.Interop)
            if interop:
                ifd[ExifTags.IFD.Interop] = interop
            else:
                del ifd[ExifTags.IFD.Interop]
        if ifd:
            found[tag] = ifd
    return found


def tiff_exif_tags(exif: bytes | None, sub_ifds: bool = True) -> tuple[list[tuple], dict[int, dict]]:
    """tifffile ``extratags`` for an EXIF block, and the sub-IFDs to append afterwards
    (none when ``sub_ifds`` is False). Text tags that are not ASCII, which TIFF requires,
    are left out."""
    if not exif:
        return [], {}
    src = Image.Exif()
    src.load(exif)
    tags: list[tuple] = []
    for tag in TIFF_EXIF_TEXT_TAGS:
        value = src.get(tag)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str) and value.isascii():
            tags.append((tag, "s", 0, value.rstrip("\x00"), True))
    if isinstance(src.get(ORIENTATION), int):
        tags.append((ORIENTATION, "H", 1, src[ORIENTATION], True))
    subs = _sub_ifds(src) if sub_ifds else {}
    tags += [(_PLACEHOLDER[tag], "I", 1, 0, True) for tag in subs]
    return tags, subs


def append_tiff_sub_ifds(f: BinaryIO, subs: dict[int, dict]) -> None:
    """Append Exif/GPS IFDs to the classic TIFF in ``f`` and point its first IFD at them."""
    if not subs:
        return
    f.seek(0)
    with tifffile.TiffFile(f) as tif:
        order = tif.byteorder
        entries = {tag: tif.pages[0].tags[_PLACEHOLDER[tag]].offset for tag in subs}
    head = (b"II*\x00" if order == "<" else b"MM\x00*") + b"\x00\x00\x00\x00"
    for tag, values in subs.items():
        end = f.seek(0, 2)
        if end % 2:  # IFDs start on a word boundary
            f.write(b"\x00")
            end += 1
        ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=head)
        for key, value in values.items():
            ifd[key] = value
        f.write(ifd.tobytes(end))
        f.seek(entries[tag])
        f.write(struct.pack(order + "HHII", tag, 4, 1, end))


def png_metadata_chunks(icc: bytes | None, exif: bytes | None, xmp: bytes | None,
                        dpi: tuple[float, float] | None) -> list[bytes]:
    """iCCP, pHYs, eXIf and XMP iTXt chunks, in an order valid before the first IDAT."""
    chunks = []
    if icc:
        chunks.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
    if dpi:
        ppm = [max(1, round(v / 0.0254)) for v in dpi]
        chunks.append(_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if exif:
        chunks.append(_chunk(b"eXIf", exif))
    if xmp:
        chunks.append(_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp))
    return chunks


def insert_png_chunks(png: bytes, chunks: list[bytes]) -> bytes:
    """Insert chunks right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    return png[:33] + b"".join(chunks) + png[33:]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
