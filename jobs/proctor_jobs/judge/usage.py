"""What a judge request costs in tokens, counted on our side: before a run (`proctor run --estimate`)
and for a server that leaves `usage` out of its replies. Either way the result is an *estimate*, kept
apart from the counts a server reports.

- Text: the judge's own `tokenizer.json` (`spec.judge.tokenizer`) when configured, exact for the text;
  otherwise CHARS_PER_TOKEN characters per token (English prose and markup average about 4 in the Qwen
  and GPT tokenizers; code somewhat fewer).
- Images: as the Qwen2-VL / Qwen2.5-VL processors count them — the image resized to multiples of 28
  pixels within [MIN_PIXELS, MAX_PIXELS], one token per 28 x 28 patch, plus two delimiter tokens.
  Other multimodal models differ (OpenAI's tiles, Gemini's fixed 258); the method is named in the
  estimate so a reader knows what the figure assumes.
- Chat framing: MESSAGE_TOKENS per message (role and template markers).
"""

from __future__ import annotations

import math
from typing import Any

CHARS_PER_TOKEN = 4.0
PATCH = 28  # 14-pixel patches merged 2 x 2
MIN_PIXELS = 4 * PATCH * PATCH
MAX_PIXELS = 16384 * PATCH * PATCH  # Qwen2.5-VL's processor default
IMAGE_DELIMITERS = 2  # <|vision_start|> and <|vision_end|>
MESSAGE_TOKENS = 4


def resized(width: int, height: int) -> tuple[int, int]:
    """The size the Qwen2-VL processor feeds the model (`smart_resize`): multiples of PATCH, within
    the pixel bounds, the aspect ratio kept."""
    h = max(PATCH, round(height / PATCH) * PATCH)
    w = max(PATCH, round(width / PATCH) * PATCH)
    if h * w > MAX_PIXELS:
        beta = math.sqrt(height * width / MAX_PIXELS)
        h = max(PATCH, math.floor(height / beta / PATCH) * PATCH)
        w = max(PATCH, math.floor(width / beta / PATCH) * PATCH)
    elif h * w < MIN_PIXELS:
        beta = math.sqrt(MIN_PIXELS / (height * width))
        h = math.ceil(height * beta / PATCH) * PATCH
        w = math.ceil(width * beta / PATCH) * PATCH
    return w, h


def image_tokens(width: int, height: int) -> int:
    w, h = resized(max(1, width), max(1, height))
    return (w // PATCH) * (h // PATCH) + IMAGE_DELIMITERS


def text_tokens(text: str, tokenizer: str | None = None) -> int:
    if not text:
        return 0
    if tokenizer:
        from proctor_jobs.judge.tokens import load_tokenizer

        return len(load_tokenizer(tokenizer).encode(text, add_special_tokens=False).ids)
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def method(tokenizer: str | None) -> str:
    return "tokenizer" if tokenizer else "chars"


def prompt_tokens(
    messages: list[dict[str, Any]], image_sizes: list[tuple[int, int]], tokenizer: str | None = None
) -> int:
    """The prompt tokens of a chat request: its text parts, its images (`image_sizes`, in order, the
    sizes actually sent) and the framing of each message."""
    tokens = MESSAGE_TOKENS * len(messages)
    for message in messages:
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts:
            if part.get("type") == "text":
                tokens += text_tokens(part.get("text") or "", tokenizer)
    return tokens + sum(image_tokens(w, h) for w, h in image_sizes)
