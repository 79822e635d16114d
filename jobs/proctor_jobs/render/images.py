"""Image checks for Vision2Code renders: blank/degenerate detection and pixel similarity.

Both follow the Vision2Code harness (image2code/vision2code, `evaluation/dataset_rubrics.py`
`inspect_candidate_image` and `benchmark/run_benchmark.py` `normalized_similarity`) so that the
judge's caps and the exported `similarity` column mean what they mean there:

- degenerate when any check triggers: smaller than 32 px on a side, grayscale variance below 4,
  grayscale range below 10, or more than 98.5 % near-white (>= 250) or near-black (<= 5) pixels;
  `blank` is the stricter subset "one flat colour" (variance or range check);
- similarity = 1 - MSE / 255² over both images converted to RGB and resized to 512×512 with
  Pillow's default filter, clamped to [0, 1].
"""

from __future__ import annotations

import io
import warnings
from typing import Any

#: The most pixels Proctor ever decodes from an image an answer produced (a screenshot, a program's
#: output): 64 MP, twice the largest screenshot the render caps allow (4096 x 8000 = 32.8 MP) and
#: 256 MB as RGBA. Pillow's own guard is a process-wide setting (89 MP warns, 179 MP raises); this
#: limit is explicit, checked from the header before a single pixel is decoded.
MAX_DECODE_PIXELS = 64_000_000


class ImageTooLarge(ValueError):
    """An image whose header declares more pixels than `MAX_DECODE_PIXELS` (a decompression bomb)."""


def open_image(data: bytes, max_pixels: int = MAX_DECODE_PIXELS, decode: bool = True):
    """A decoded Pillow image, or `ImageTooLarge` when the header announces more than `max_pixels`
    (never Pillow's DecompressionBombError); other unreadable data raises what Pillow raises.
    `decode=False` returns the image with its header read only (size, mode, format)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"decompression bomb: {exc}") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageTooLarge(
            f"{width}x{height} image ({width * height / 1e6:.0f} MP) exceeds the decode limit of "
            f"{max_pixels / 1e6:.0f} MP"
        )
    if decode:
        image.load()
    return image


def _open(png: bytes):
    return open_image(png)


def inspect_candidate(png: bytes | None) -> dict[str, Any]:
    """The original's `candidate_inspection`, plus `blank` (one flat colour)."""
    from PIL import ImageStat

    if not png:
        return {
            "candidate_readable": False,
            "is_blank_or_degenerate": True,
            "blank": True,
            "checks_triggered": ["missing_candidate_image"],
            "width": 0,
            "height": 0,
        }
    try:
        rgb = _open(png).convert("RGB")
    except Exception as exc:
        return {
            "candidate_readable": False,
            "is_blank_or_degenerate": True,
            "blank": True,
            "checks_triggered": [f"unreadable_image:{type(exc).__name__}"],
            "width": 0,
            "height": 0,
        }
    width, height = rgb.size
    gray = rgb.convert("L")
    stat = ImageStat.Stat(gray)
    mean = float(stat.mean[0]) if stat.mean else 0.0
    variance = float(stat.var[0]) if stat.var else 0.0
    low, high = gray.getextrema() or (0, 0)
    histogram = gray.histogram()
    total = max(width * height, 1)
    near_white = sum(histogram[250:256]) / total
    near_black = sum(histogram[:6]) / total
    checks = []
    if min(width, height) < 32:
        checks.append("too_small")
    if variance < 4.0:
        checks.append("near_zero_variance")
    if high - low < 10:
        checks.append("near_monochrome")
    if near_white > 0.985 or near_black > 0.985:
        checks.append("mostly_empty_canvas")
    return {
        "candidate_readable": True,
        "is_blank_or_degenerate": bool(checks),
        "blank": "near_zero_variance" in checks or "near_monochrome" in checks,
        "checks_triggered": checks,
        "width": width,
        "height": height,
        "grayscale_mean": round(mean, 4),
        "grayscale_variance": round(variance, 4),
        "near_white_ratio": round(near_white, 6),
        "near_black_ratio": round(near_black, 6),
    }


def similarity(reference_png: bytes, candidate_png: bytes) -> float:
    import numpy as np

    a = np.asarray(_open(reference_png).convert("RGB").resize((512, 512)), dtype=np.float32)
    b = np.asarray(_open(candidate_png).convert("RGB").resize((512, 512)), dtype=np.float32)
    mse = float(np.mean((a - b) ** 2))
    return max(0.0, min(1.0, 1.0 - mse / (255.0**2)))


def image_size(png: bytes) -> tuple[int, int]:
    image = _open(png)
    return image.size
