"""Image sizes read from headers in pure Python (the operator plans Vision2Code runs without Pillow)
agree with Pillow's, and anything else is refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from proctor_jobs.image_header import image_size


def encoded(fmt: str, size: tuple[int, int], mode: str = "RGB", **options) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 0).save(out, format=fmt, **options)
    return out.getvalue()


CASES = [
    ("PNG", (640, 480), "RGB", {}),
    ("PNG", (1, 3000), "L", {}),
    ("JPEG", (1024, 768), "RGB", {}),
    ("JPEG", (333, 77), "RGB", {"progressive": True}),
    ("JPEG", (50, 40), "RGB", {"exif": b"Exif\x00\x00" + b"\x00" * 64}),  # an APP1 segment first
    ("GIF", (123, 45), "RGB", {}),
    ("BMP", (17, 9), "RGB", {}),
    ("WEBP", (800, 600), "RGB", {"lossless": False}),
    ("WEBP", (16383, 2), "RGB", {"lossless": True}),
    ("WEBP", (301, 199), "RGBA", {"lossless": False}),  # alpha: the extended (VP8X) header
]


@pytest.mark.parametrize(("fmt", "size", "mode", "options"), CASES)
def test_the_size_is_pillows(fmt, size, mode, options):
    data = encoded(fmt, size, mode, **options)
    with Image.open(io.BytesIO(data)) as image:
        assert image_size(data) == image.size == size


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF8",
        b"\x89PNG\r\n\x1a\n\x00\x00",  # cut short
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"\xff\xd8\xff\xd9",  # a JPEG that ends before any frame
        encoded("PNG", (5, 5))[:20],
    ],
)
def test_anything_else_is_refused(data):
    with pytest.raises(ValueError):
        image_size(data)
