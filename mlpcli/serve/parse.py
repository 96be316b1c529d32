"""Request bodies read with limits: JSON nested at most so deep, and no NaN or Infinity."""

from __future__ import annotations

import json
from typing import Any

from mlpcli.errors import MlpcliError

MAX_DEPTH = 16  # nesting of a request's JSON (a config is 3 deep; points 3)


def parse_json(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """A request's JSON with limits: nested at most max_depth deep (checked before parsing, so no recursion), no
    NaN or Infinity (not JSON); MlpcliError saying which."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                raise MlpcliError(f"the JSON is nested more than {max_depth} deep")
        elif ch in "]}":
            depth -= 1

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, parse_constant=constant)
    except ValueError as exc:
        raise MlpcliError(f"the body must be JSON ({str(exc)[:80]})") from None
