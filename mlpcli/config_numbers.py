"""Config numbers checked the way the network uses them: strict (no true for 1), finite in float32, within int64,
in lists of bounded length. Every config section applies it to every field (config.StrictModel)."""

from __future__ import annotations

import math
from typing import Any, get_args

import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_INT = 2**63 - 1  # every whole number a config holds fits NumPy's int64
MAX_LIST = 10_000  # entries of any list in a config


def _admits(annotation: Any, kind: type) -> bool:
    """Whether a field's annotation (through Optional, Union, Annotated, list[...]) admits values of kind."""
    if annotation is kind:
        return True
    return any(_admits(arg, kind) for arg in get_args(annotation))


def strict_number(value: Any, annotation: Any) -> Any:
    """A config value checked the way the network uses it (shared by every section, so `mlpcli train` and the
    playground refuse the same things): no true/false where a number is meant, every float finite in float32
    (|x| <= 3.4e38: a weight, a rate and a noise become float32 arrays), every int within int64, every list at
    most MAX_LIST long. Raises ValueError saying which."""
    if isinstance(value, bool):
        if not _admits(annotation, bool) and (_admits(annotation, int) or _admits(annotation, float)):
            raise ValueError(f"must be a number, not {str(value).lower()}")
    elif isinstance(value, float):
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise ValueError(f"must be a finite number (within float32's range, |x| <= 3.4e38), not {value!r}")
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ValueError(f"must be a whole number within int64's range, not {value}")
    elif isinstance(value, str) and not _admits(annotation, str) and _admits(annotation, float):
        try:  # "1e300" (YAML reads an exponent without a dot as text): pydantic would make it a float
            number = float(value)
        except ValueError:
            return value
        strict_number(number, annotation)
    elif isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST:
            raise ValueError(f"at most {MAX_LIST} entries (got {len(value)})")
        args = [a for a in get_args(annotation) if a is not type(None)]
        inner = get_args(args[0])[0] if len(args) == 1 and get_args(args[0]) else (args[-1] if args else Any)
        for item in value:
            strict_number(item, inner)
    return value
