"""Images an answer produced are bounded before they reach the judge, and bombs are never decoded.

Attacks: a PNG whose header announces 30000x7000 (210 MP; Pillow's own guard raises
DecompressionBombError at 179 MP, and the render stage used to lose the item's evidence to it), one of
20000x7900 (158 MP: Pillow only warns, and the judge got a 74 MB PNG), an image above the pixel
budget and one above the byte budget.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image

from proctor_jobs.judge import images as J
from proctor_jobs.judge.config import ImageOptions
from proctor_jobs.render.images import MAX_DECODE_PIXELS, ImageTooLarge, inspect_candidate, open_image
from proctor_jobs.render.page import is_blank


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int, height: int, rows: int = 16) -> bytes:
    """A valid PNG header announcing width x height, with the first rows of zeros (Pillow reads the
    header on open; decoding would inflate width x height x 3 bytes)."""
    raw = (b"\x00" + b"\x00" * width * 3) * rows
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(
        b"IEND", b""
    )


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("size", [(30000, 7000), (20000, 7900)])
def test_a_bomb_is_rejected_from_its_header_never_decoded(size):
    data = bomb_png(*size)
    with pytest.raises(J.ImageRejected, match=r"decode limit|decompression bomb"):
        J.image_part(data)  # the faithful profile too: no options
    with pytest.raises(ImageTooLarge):
        open_image(data)
    with pytest.raises(ImageTooLarge):
        is_blank(data)
    inspection = inspect_candidate(data)  # Vision2Code: an unreadable candidate, not a crash
    assert not inspection["candidate_readable"] and "ImageTooLarge" in inspection["checks_triggered"][0]
    assert size[0] * size[1] > MAX_DECODE_PIXELS


def test_an_image_above_the_pixel_budget_is_downscaled_and_noted():
    big = Image.linear_gradient("L").resize((5000, 4000)).convert("RGB")  # 20 MP, compresses well
    data = png(big)
    assert len(data) < J.MAX_BYTES
    notes: list[str] = []
    payload, mime = J.prepare_image(data, None, notes)
    with Image.open(io.BytesIO(payload)) as sent:
        assert sent.width * sent.height <= J.MAX_PIXELS
        assert sent.width / sent.height == pytest.approx(1.25, 0.01)
    assert mime == "image/png" and notes and "5000x4000" in notes[0]


def test_an_image_above_the_byte_budget_is_downscaled_until_it_fits():
    side = 1900  # noise does not compress: about 10.8 MB of PNG for 3.6 MP
    data = png(Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)))
    assert len(data) > J.MAX_BYTES
    notes: list[str] = []
    part = J.image_part(data, ImageOptions(), notes)
    payload = J.base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
    assert len(payload) <= J.MAX_BYTES and notes


def test_an_image_within_the_budgets_is_sent_unchanged():
    data = png(Image.new("RGB", (1280, 8000), "navy"))
    notes: list[str] = []
    assert J.prepare_image(data, None, notes) == (data, "image/png") and notes == []
