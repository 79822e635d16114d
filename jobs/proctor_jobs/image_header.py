"""An image's size read from its header: PNG, JPEG, GIF, WebP and BMP, in pure Python.

Loading a Vision2Code task checks its reference image and records its size. That happens wherever a
run is planned — in the operator too, whose image holds no image library — and it needs no more than
Pillow's `Image.open` reads: the header. The pixels are decoded later, in the worker pods that render
and judge.
"""

from __future__ import annotations

import struct

__all__ = ["image_size"]

# JPEG start-of-frame markers (the frame header holds the size); C4, C8 and CC are other segments.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, JPEG, GIF, WebP or BMP image; ValueError when `data` is none of them
    or its header is cut short or names an empty image."""
    try:
        size = _size(data)
    except (struct.error, IndexError):
        raise ValueError("the image header is cut short") from None
    if size is None:
        raise ValueError("not a PNG, JPEG, GIF, WebP or BMP image")
    width, height = size
    if width <= 0 or height <= 0:
        raise ValueError(f"the image header names an empty image ({width}x{height})")
    return width, height


def _size(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        if data[12:16] != b"IHDR":
            raise ValueError("a PNG without its IHDR header")
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp(data)
    if data.startswith(b"BM"):
        (header,) = struct.unpack("<I", data[14:18])
        if header == 12:  # OS/2 bitmap core header
            return struct.unpack("<HH", data[18:22])
        width, height = struct.unpack("<ii", data[18:26])
        return width, abs(height)  # a negative height is a top-down bitmap
    return None


def _jpeg(data: bytes) -> tuple[int, int]:
    at = 2
    while True:
        while data[at] != 0xFF:  # tolerate padding between segments
            at += 1
        while data[at] == 0xFF:
            at += 1
        marker = data[at]
        at += 1
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a segment
            continue
        if marker in (0xD9, 0xDA):
            raise ValueError("a JPEG without a frame header before its image data")
        (length,) = struct.unpack(">H", data[at : at + 2])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[at + 3 : at + 7])
            return width, height
        if length < 2:
            raise ValueError("a JPEG segment with a bad length")
        at += length


def _webp(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise ValueError("a lossy WebP without its start code")
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise ValueError("a lossless WebP without its signature")
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise ValueError(f"a WebP with an unknown first chunk {chunk!r}")
