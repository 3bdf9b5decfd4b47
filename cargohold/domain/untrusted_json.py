"""JSON from clients, parsed with bounds.

Python's parser recurses once per nesting level, so a body of a hundred thousand `[` ends in
RecursionError; it also turns `1e999` into infinity. Every document a client sends (API
bodies, manifests, webhook payloads) goes through `loads`, which refuses both as malformed
JSON: the callers already answer malformed JSON with their protocol's 400. Integers keep
their full range here (Python refuses more than 4300 digits); each field's validation bounds
them, so that an out-of-range value gets that field's own message.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deeper than any manifest, index or API body; far below the interpreter's recursion limit.
MAX_DEPTH = 64

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class UntrustedJsonError(ValueError):
    """The document nests deeper, or holds a larger number, than cargohold accepts."""


def loads(raw: bytes | str) -> Any:
    """Parse a client's JSON document; ValueError (or UnicodeDecodeError) when it is unusable."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if too_deep(data):
        raise UntrustedJsonError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return json.loads(data, parse_float=_finite_float)


def too_deep(data: bytes) -> bool:
    """Whether arrays and objects nest deeper than MAX_DEPTH (brackets in strings aside)."""
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for byte in _STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UntrustedJsonError("JSON number out of range")
    return value
