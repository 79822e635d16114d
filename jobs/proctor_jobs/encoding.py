"""Text that is not UTF-8: find it, name its byte offset, and keep what can be kept.

Inputs (manifests, tasks, answers) must be UTF-8. A Latin-1 file, a raw `\\xff` byte or a lone
surrogate (a `\\ud800` escape, which JSON and YAML accept but UTF-8 cannot store) is named by its
byte offset; readers add the file and line.
"""

from __future__ import annotations

import re
from typing import Any

#: a `\\uD800`-`\\uDFFF` escape not part of a surrogate pair (JSON allows it; UTF-8 cannot store it)
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_SURROGATES = re.compile("[\ud800-\udfff]")
UTF8_HINT = "inputs must be UTF-8 (from Latin-1: iconv -f latin1 -t utf-8 FILE)"


def undecodable(raw: bytes, offset: int = 0, json_escapes: bool = True) -> tuple[int, str] | None:
    """(byte offset, why) when `raw` is not UTF-8 text Proctor can store, else None; offsets are
    counted from `offset` (where `raw` starts in its file).

    With `json_escapes`, a lone `\\ud800` escape counts too (JSON text; YAML is checked once parsed)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        at, bad = offset + exc.start, raw[exc.start : exc.start + 3]
        if bad[:1] == b"\xed" and len(bad) == 3 and 0xA0 <= bad[1] <= 0xBF:
            code = (bad[1] & 0x3F) << 6 | (bad[2] & 0x3F) | 0xD000
            return at, f"lone surrogate U+{code:04X} at byte offset {at}"
        return at, f"byte 0x{raw[exc.start]:02x} at byte offset {at} is not UTF-8"
    match = _LONE_SURROGATE.search(raw) if json_escapes else None
    if match:
        at = offset + match.start()
        return at, f"lone surrogate {match.group().decode()} at byte offset {at} (UTF-8 cannot hold it)"
    return None


def line_at(raw: bytes, offset: int) -> int:
    """The 1-based line of a byte offset."""
    return raw.count(b"\n", 0, offset) + 1


def not_text(raw: bytes, where: str, json_escapes: bool = True) -> str | None:
    """`WHERE: line N: why; how to convert` when the whole of `raw` must be UTF-8 text and is not."""
    problem = undecodable(raw, json_escapes=json_escapes)
    if problem is None:
        return None
    offset, why = problem
    return f"{where}: line {line_at(raw, offset)}: {why}; {UTF8_HINT}"


def scrub(value: Any) -> Any:
    """The value with lone surrogates replaced by U+FFFD, so it can be stored as UTF-8."""
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


def surrogate_at(value: Any, path: str = "") -> str | None:
    """The field path of the first string holding a lone surrogate (a YAML `"\\ud800"` escape)."""
    if isinstance(value, str):
        return (path or "<root>") if any("\ud800" <= c <= "\udfff" for c in value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found = surrogate_at(child, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip("."))
        if found:
            return found
    return None
