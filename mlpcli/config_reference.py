"""The config reference (docs/CONFIG.md), generated from the schema: every key with its type, default and
description, so the documentation can never drift from the code (a test compares the two)."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mlpcli.config_schema import ExperimentConfig

HEADER = """# Config reference

Generated from the config schema (`mlpcli/config_schema.py`) by `python scripts/docs.py`; a test holds this
file equal to what the code says. Every key of an experiment config, with its type and default. A config file
gives any of them (`mlpcli config show NAME` prints one with every default filled in); `--set key=value`
overrides one on the command line. Numbers are checked strictly: `lr: true` is not a number, `.inf` and `.nan`
are refused, and each is checked in the type it is used in.

| key | type | default | meaning |
|---|---|---|---|
"""


def _section(annotation: Any) -> type[BaseModel] | None:
    """The config section a field holds (also inside Optional[...]), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None


def type_name(annotation: Any) -> str:
    """A field's type as a reader says it: `int`, `float`, `one of a, b`, `list of int`, `... or null`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return f"`{args[0]}`" if len(args) == 1 else "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        parts = [type_name(a) for a in args if a is not type(None)]
        text = " or ".join(dict.fromkeys(parts))
        return text + (" or null" if type(None) in args else "")
    if origin in (list, tuple):
        return "list of " + type_name(args[0]) if args else "list"
    if origin is not None and getattr(origin, "__name__", "") == "Annotated":
        return type_name(args[0])
    if typing.get_origin(annotation) is typing.Annotated:
        return type_name(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    name = getattr(annotation, "__name__", None) or str(annotation)
    return {"StrictInt": "int", "PosixPath": "path", "Path": "path", "NoneType": "null"}.get(name, name)


def _default(field: Any) -> str:
    if field.default is PydanticUndefined:
        value = field.default_factory() if field.default_factory is not None else None
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(the section's defaults)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return f"`{value}`"


def rows(model: type[BaseModel] = ExperimentConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every key of model, sections' keys after their section."""
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        section = _section(field.annotation)
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        if section is not None:
            optional = type(None) in typing.get_args(field.annotation)
            if optional:
                out.append((key, "section or null", _default(field), description or (section.__doc__ or "").strip()))
            out += rows(section, key + ".")
            continue
        out.append((key, type_name(field.annotation).replace("|", "\\|"), _default(field), description))
    return out


def config_reference() -> str:
    """docs/CONFIG.md's text."""
    lines = [f"| `{key}` | {kind} | {default} | {text} |" for key, kind, default, text in rows()]
    return HEADER + "\n".join(lines) + "\n"
