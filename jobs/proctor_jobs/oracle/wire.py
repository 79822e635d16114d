"""Plain data between the trusted harness and the sandboxed candidate.

The harness (which runs a benchmark's test script) and the candidate (which runs the answer) live in
different processes; the test calls the candidate through this codec. Only plain data crosses: the
JSON-able scalars, lists, tuples, dicts, sets, frozensets, bytes, complex numbers, big integers and
numpy scalars and arrays. Nothing the candidate sends can run code in the harness: decoding builds
only those types, with bounded size and depth, and comparison (`==`) in the test then happens
between plain values the harness built itself — an object whose `__eq__` always returns True cannot
cross (it is refused as an unsupported type, where the original's in-process harness would accept it).

Frames are a 4-byte big-endian length and a UTF-8 JSON body.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct

MAX_FRAME = 32 * 1024 * 1024
MAX_DEPTH = 200
_BIG_INT_DIGITS = 4000  # ints beyond this cross as decimal strings (json's own limit is 4300)


class WireError(ValueError):
    """A value cannot cross, or a frame is malformed (the sender's fault)."""


def encode_value(value, depth: int = 0):
    """A JSON-able form of `value`, tagged so the receiver rebuilds the same plain types."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        if abs(value).bit_length() > _BIG_INT_DIGITS * 3:
            return {"i": str(value)}
        return value
    if kind is float:
        return value if math.isfinite(value) else {"x": repr(value)}
    if kind is list:
        return [encode_value(v, depth + 1) for v in value]
    if kind is tuple:
        return {"t": [encode_value(v, depth + 1) for v in value]}
    if kind is dict:
        return {"d": [[encode_value(k, depth + 1), encode_value(v, depth + 1)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        tag = "s" if kind is set else "f"
        return {tag: [encode_value(v, depth + 1) for v in value]}
    if kind is bytes or kind is bytearray:
        return {"b": base64.b64encode(bytes(value)).decode()}
    if kind is complex:
        return {"c": [encode_value(value.real, depth + 1), encode_value(value.imag, depth + 1)]}
    if kind.__module__ == "numpy":
        return _encode_numpy(value, depth)
    raise WireError(f"values of type {kind.__name__} cannot be passed between the test and the answer")


def _encode_numpy(value, depth: int):
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufcU":
            raise WireError(f"numpy arrays of dtype {value.dtype} cannot be passed")
        return {"nd": [str(value.dtype), encode_value(value.tolist(), depth + 1)]}
    if isinstance(value, np.generic):
        return {"ns": [str(value.dtype), encode_value(value.item(), depth + 1)]}
    raise WireError(f"values of type numpy.{type(value).__name__} cannot be passed")


def decode_value(data, depth: int = 0):
    """Rebuild a value from `encode_value`'s form; anything else is a WireError."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    kind = type(data)
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        return [decode_value(v, depth + 1) for v in data]
    if kind is not dict or len(data) != 1:
        raise WireError("malformed value")
    ((tag, body),) = data.items()
    try:
        if tag == "t":
            return tuple(decode_value(v, depth + 1) for v in _list(body))
        if tag == "d":
            return {
                _hashable(decode_value(k, depth + 1)): decode_value(v, depth + 1) for k, v in _pairs(body)
            }
        if tag == "s":
            return {_hashable(decode_value(v, depth + 1)) for v in _list(body)}
        if tag == "f":
            return frozenset(_hashable(decode_value(v, depth + 1)) for v in _list(body))
        if tag == "b":
            return base64.b64decode(_str(body), validate=True)
        if tag == "i":
            return int(_str(body))
        if tag == "x":
            if body not in ("nan", "inf", "-inf"):
                raise WireError("malformed float")
            return float(body)
        if tag == "c":
            real, imag = _list(body)
            return complex(_number(decode_value(real, depth + 1)), _number(decode_value(imag, depth + 1)))
        if tag in ("nd", "ns"):
            return _decode_numpy(tag, body, depth)
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError(f"malformed value: {exc}") from None
    raise WireError(f"unknown tag {tag!r}")


def _decode_numpy(tag: str, body, depth: int):
    import numpy as np

    dtype, content = _list(body)
    dtype = np.dtype(_str(dtype))
    if dtype.kind not in "biufcU":
        raise WireError(f"numpy dtype {dtype} cannot be passed")
    value = decode_value(content, depth + 1)
    if tag == "ns":
        return dtype.type(value)
    return np.array(value, dtype=dtype)


def _list(body) -> list:
    if type(body) is not list:
        raise WireError("malformed value")
    return body


def _pairs(body) -> list:
    pairs = _list(body)
    if any(type(p) is not list or len(p) != 2 for p in pairs):
        raise WireError("malformed dict")
    return pairs


def _str(body) -> str:
    if type(body) is not str:
        raise WireError("malformed value")
    return body


def _number(value):
    if type(value) not in (int, float):
        raise WireError("malformed complex number")
    return value


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        raise WireError("unhashable dict key or set member") from None
    return value


# ---- framing over a blocking socket or pipe ---------------------------------------------------------


def send_frame(fd: int, message: dict) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise WireError(f"message of {len(body)} bytes exceeds {MAX_FRAME}")
    data = struct.pack(">I", len(body)) + body
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def recv_frame(fd: int) -> dict | None:
    """The next message, or None at end of stream. Raises WireError on a malformed or huge frame."""
    header = _read_exactly(fd, 4)
    if header is None:
        return None
    (size,) = struct.unpack(">I", header)
    if size > MAX_FRAME:
        raise WireError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    body = _read_exactly(fd, size)
    if body is None:
        raise WireError("stream ended inside a frame")
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise WireError(f"frame is not JSON: {exc}") from None
    if type(message) is not dict:
        raise WireError("frame is not an object")
    return message


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            if remaining == size and not chunks:
                return None
            raise WireError("stream ended inside a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
