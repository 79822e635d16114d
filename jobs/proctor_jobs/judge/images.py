"""Images as chat-completion content parts (data URLs), optionally shrunk before sending."""

from __future__ import annotations

import base64
import io
from typing import Any

from proctor_jobs.judge.config import ImageOptions


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


def prepare_image(data: bytes, options: ImageOptions | None) -> tuple[bytes, str]:
    """The bytes to send and their MIME type; unchanged unless shrinking is asked for."""
    if options is None or not options.active:
        return data, sniff_mime(data)
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if options.max_side and max(image.size) > options.max_side:
            scale = options.max_side / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if options.format == "jpeg":
            image.convert("RGB").save(out, format="JPEG", quality=options.jpeg_quality, optimize=True)
            return out.getvalue(), "image/jpeg"
        image.save(out, format="PNG", optimize=True)
        return out.getvalue(), "image/png"


def data_url(data: bytes, mime: str | None = None) -> str:
    return f"data:{mime or sniff_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"


def image_part(data: bytes, options: ImageOptions | None = None) -> dict[str, Any]:
    """One `image_url` content part, as the OpenAI chat API and vLLM expect it."""
    payload, mime = prepare_image(data, options)
    return {"type": "image_url", "image_url": {"url": data_url(payload, mime)}}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def decode_base64_image(value: str) -> bytes:
    """An image given as base64 or a data URL."""
    if value.startswith("data:"):
        value = value.split(",", 1)[1]
    return base64.b64decode(value, validate=False)
