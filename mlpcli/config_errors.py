"""Pydantic's validation errors as one line each, naming the field: `optimizer.lr: must be > 0 (got -0.1)`."""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel, ValidationError


def _fields_at(loc: tuple[Any, ...], root: type[BaseModel]) -> list[str]:
    """Field names of the section a location points into (for 'did you mean')."""
    model: Any = root
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _all_keys(model: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a model, sections included ("train", "train.epochs", ...)."""
    keys = []
    for name, field in getattr(model, "model_fields", {}).items():
        path = f"{prefix}{name}"
        keys.append(path)
        for candidate in getattr(field.annotation, "__args__", (field.annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                keys.extend(_all_keys(candidate, path + "."))
    return keys


def error_path(error: dict[str, Any]) -> str:
    """The dotted field a pydantic error is about."""
    loc = tuple(
        p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "int", "float", "literal[")))
    )
    return ".".join(str(p) for p in loc)


def _describe(error: dict[str, Any], root: type[BaseModel]) -> str:
    """One pydantic error as 'path: message (got value)'."""
    loc = tuple(
        p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "int", "float", "literal[")))
    )
    path = ".".join(str(p) for p in loc)
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    got = f" (got {value!r})" if not isinstance(value, (dict, list)) else ""
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _fields_at(loc, root), n=1)
        elsewhere = [k for k in _all_keys(root) if k.rsplit(".", 1)[-1] == str(loc[-1]) and k != path]
        if close:
            hint = f"; did you mean {close[0]}?"
        elif elsewhere:  # the right name in another section: `epochs` for train.epochs
            hint = f"; did you mean {' or '.join(elsewhere)}?"
        else:
            known = _fields_at(loc, root)
            hint = f"; known keys: {', '.join(known)}" if known else ""
        return f"{path}: unknown key{hint}"
    if kind == "missing":
        return f"{path}: is required"
    if kind == "literal_error":
        return f"{path}: must be one of {ctx.get('expected', '')}{got}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        bound = next(iter(ctx.values()))
        return f"{path}: must be {bounds[kind]} {bound}{got}"
    if kind.startswith(("int_", "float_", "bool_", "string_", "list_", "model_", "dict_", "path_")):
        return f"{path}: {error['msg'][0].lower() + error['msg'][1:]}{got}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if path and re.match(r"^[\w.]+: ", message):  # a section's validator naming its own field
        return f"{path}.{message}"
    return f"{path}: {message}" if path else message


def format_validation_error(exc: ValidationError, root: type[BaseModel]) -> str:
    """All problems of a ValidationError on one line, each naming its field (root: the model validated)."""
    return "; ".join(dict.fromkeys(_describe(e, root) for e in exc.errors()))


def problems(exc: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """Each problem as (dotted field, one-line message), in order, without repeats."""
    seen: dict[str, str] = {}
    for e in exc.errors():
        seen.setdefault(error_path(e), _describe(e, root))  # a union's other branches add nothing a user needs
    return list(seen.items())
