"""Images as chat-completion content parts (data URLs), bounded, and optionally shrunk, before sending.

Every image comes from an answer (a screenshot of a page, a program's output), so whatever the
profile, one image sent to the judge is at most `MAX_PIXELS` and `MAX_BYTES`: a larger one is first
re-encoded (lossless), then downscaled until it fits, and the change is noted in the judge's record.
An image whose header announces more than the decode limit (`render.images.MAX_DECODE_PIXELS`) is
never decoded: `ImageRejected`, which the judge records instead of sending it.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

from proctor_jobs.judge.config import ImageOptions
from proctor_jobs.render.images import ImageTooLarge, open_image

#: At most per image sent: 16 MP (a default full-page screenshot, 1280 x 8000, is 10.2 MP) and
#: 8 MiB before base64 (OpenAI-style APIs refuse images over 20 MB; vLLM resizes anyway).
MAX_PIXELS = 16_000_000
MAX_BYTES = 8 * 1024 * 1024


class ImageRejected(ValueError):
    """An image that is not sent to the judge (a decompression bomb), with the reason."""


def sniff_mime(data: bytes) -> str:
    """The image type from its magic bytes (the data URL must say what the bytes are)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return "image/png"


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header (nothing decoded); None for data Pillow cannot identify."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open_image(data, decode=False) as image:
            return image.size
    except ImageTooLarge as exc:
        raise ImageRejected(str(exc)) from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def _encode(image, options: ImageOptions | None) -> tuple[bytes, str]:
    out = io.BytesIO()
    if options is not None and options.format == "jpeg":
        image.convert("RGB").save(out, format="JPEG", quality=options.jpeg_quality, optimize=True)
        return out.getvalue(), "image/jpeg"
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    image.save(out, format="PNG", optimize=True)
    return out.getvalue(), "image/png"


def _scaled(image, scale: float):
    from PIL import Image

    if scale >= 1:
        return image
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def prepare_image(
    data: bytes,
    options: ImageOptions | None,
    notes: list[str] | None = None,
    sizes: list[tuple[int, int]] | None = None,
) -> tuple[bytes, str]:
    """The bytes to send and their MIME type: unchanged when within the budgets and no shrinking
    is asked for; otherwise re-encoded and downscaled to fit (`notes` says what was done). `sizes`
    gets the (width, height) sent, for the cost accounting (from the header: nothing more decoded)."""
    size = _header_size(data)
    if size is None:  # not an image Pillow knows: sent as it is if it is small enough
        if len(data) > MAX_BYTES:
            raise ImageRejected(f"unreadable image of {len(data)} bytes exceeds {MAX_BYTES} bytes")
        return data, sniff_mime(data)
    width, height = size
    within = width * height <= MAX_PIXELS and len(data) <= MAX_BYTES
    if within and (options is None or not options.active):
        if sizes is not None:
            sizes.append((width, height))
        return data, sniff_mime(data)
    try:
        original = open_image(data)
    except ImageTooLarge as exc:
        raise ImageRejected(str(exc)) from None
    with original:
        scale = 1.0
        if options is not None and options.max_side and max(width, height) > options.max_side:
            scale = options.max_side / max(width, height)
        scale = min(scale, math.sqrt(MAX_PIXELS / (width * height)))
        for _ in range(8):
            image = _scaled(original, scale)
            payload, mime = _encode(image, options)
            if len(payload) <= MAX_BYTES:
                break
            scale *= 0.9 * math.sqrt(MAX_BYTES / len(payload))
        else:
            raise ImageRejected(f"{width}x{height} image does not fit in {MAX_BYTES} bytes")
    if not within and notes is not None:
        notes.append(
            f"{width}x{height} image of {len(data)} bytes sent as {image.width}x{image.height}, "
            f"{len(payload)} bytes (judge budget {MAX_PIXELS / 1e6:g} MP, {MAX_BYTES} bytes)"
        )
    if sizes is not None:
        sizes.append((image.width, image.height))
    return payload, mime


def data_url(data: bytes, mime: str | None = None) -> str:
    return f"data:{mime or sniff_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"


def image_part(
    data: bytes,
    options: ImageOptions | None = None,
    notes: list[str] | None = None,
    sizes: list[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """One `image_url` content part, as the OpenAI chat API and vLLM expect it (raises
    `ImageRejected` for an image that must not be decoded); `sizes` gets the size sent."""
    payload, mime = prepare_image(data, options, notes, sizes)
    return {"type": "image_url", "image_url": {"url": data_url(payload, mime)}}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def decode_base64_image(value: str) -> bytes:
    """An image given as base64 or a data URL."""
    if value.startswith("data:"):
        value = value.split(",", 1)[1]
    return base64.b64decode(value, validate=False)
