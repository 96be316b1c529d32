"""The experiment config, loaded: YAML files and overrides into the schema (config_schema.py), with errors that
name the field; dumped back, flattened, and its JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlpcli.config_errors import problems
from mlpcli.config_schema import (
    INPUT_SIZE,
    MAX_PARAMETERS,
    NUM_CLASSES,
    ActivationName,
    AugmentConfig,
    DataConfig,
    EarlyStoppingConfig,
    EmaConfig,
    ExperimentConfig,
    InitName,
    LossName,
    ModelConfig,
    OptimizerConfig,
    OptimizerName,
    OutputName,
    ScheduleConfig,
    ScheduleName,
    StrictModel,
    TrackerName,
    TrainConfig,
    folder_name_problem,
)
from mlpcli.errors import ConfigError

__all__ = [
    "INPUT_SIZE",
    "NUM_CLASSES",
    "MAX_PARAMETERS",
    "ActivationName",
    "OutputName",
    "LossName",
    "InitName",
    "OptimizerName",
    "ScheduleName",
    "TrackerName",
    "StrictModel",
    "DataConfig",
    "ModelConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "AugmentConfig",
    "EarlyStoppingConfig",
    "EmaConfig",
    "TrainConfig",
    "folder_name_problem",
    "ExperimentConfig",
]


# ---- loading ---------------------------------------------------------------------------


def parse_override(text: str) -> tuple[list[str], Any]:
    """'optimizer.lr=0.1' -> (['optimizer', 'lr'], 0.1); the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected key.path=value, e.g. optimizer.lr=0.1")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({exc})") from None
    return [p for p in key.strip().split(".")], value


def as_overrides(overrides: Any) -> list[str]:
    """Overrides as "key.path=value" strings, from what a caller may give: None, one such string, a list of them,
    or a mapping {"key.path": value} (a value is written as JSON, which YAML reads back as the same value).
    ConfigError for anything else."""
    import json
    from collections.abc import Mapping

    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    if isinstance(overrides, Mapping):
        out = []
        for key, value in overrides.items():
            if not isinstance(key, str) or not key.strip():
                raise ConfigError(f"overrides: keys are dotted config keys such as 'train.epochs' (got {key!r})")
            try:
                out.append(f"{key}={json.dumps(value, allow_nan=False)}")
            except (TypeError, ValueError):
                raise ConfigError(f"overrides: {key}: {value!r} is not a config value") from None
        return out
    if isinstance(overrides, (list, tuple)) and all(isinstance(o, str) for o in overrides):
        return list(overrides)
    raise ConfigError(
        f'overrides: give "key=value", a list of them, or a mapping {{"key": value}} (got {type(overrides).__name__})'
    )


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of raw with each key.path=value override set."""
    import copy

    out = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return out


SHIPPED = Path(__file__).parent / "configs"  # the example configs, inside the package (configs/ in a clone)


def find_config(path: Path | str) -> Path:
    """A config path as given when it exists; else a shipped config by its bare name ("mnist",
    "papers/simard03-800-elastic", "sweeps/lecture-activations", "toy"), with or without .yaml."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    name = path.as_posix().removeprefix("configs/")
    for candidate in (name, f"{name}.yaml", f"sweeps/{name}", f"sweeps/{name}.yaml"):
        shipped = SHIPPED / candidate
        if shipped.is_file():
            return shipped
    return path


def _closest_shipped(path: Path) -> str:
    """'; did you mean mnist?' for a name close to a shipped config's (mnsit), else a pointer to the list."""
    import difflib

    names = [p.with_suffix("").as_posix() for p in shipped_configs()]
    given = path.as_posix().removeprefix("configs/").removesuffix(".yaml")
    close = difflib.get_close_matches(given, names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]}? (mlpcli config list shows every shipped config)"
    return "; mlpcli config list shows the shipped configs" if "/" not in given else ""


def shipped_configs() -> list[Path]:
    """Every config shipped with mlpcli, relative to the shipped folder, sorted."""
    return sorted(p.relative_to(SHIPPED) for p in SHIPPED.rglob("*.yaml"))


MAX_CONFIG_BYTES = 1024 * 1024  # a config or sweep file is a few hundred bytes; a network file a few KiB


def read_yaml(path: Path) -> Any:
    """Parse a YAML file safely; ConfigError with line and column on a syntax error."""
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            raise ConfigError(f"{path}: not a regular file (a device, pipe or socket); give a config file")
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; not a config file")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file{_closest_shipped(path)}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (not UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: YAML syntax error{where}: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML error: {exc}") from None


def config_from_dict(
    raw: Any, source: str, overrides: list[str] | None = None, overrides_from: str = "the command line's"
) -> ExperimentConfig:
    """Validate a raw mapping (plus overrides) into an ExperimentConfig; ConfigError names source and field."""
    if raw is None:
        raw = {}
        if not overrides:
            raise ConfigError(f"{source}: the config is empty; see 'mlpcli config show' for every key")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a config must be a mapping of keys to values, not a {type(raw).__name__}")
    if set(raw) == {"network"}:
        raise ConfigError(
            f"{source} is a network file (every weight written out), not an experiment config: "
            f"mlpcli trace -c {source} --input ... and mlpcli inspect {source} take it; train, config show and "
            "gradcheck take an experiment config (mlpcli config list)"
        )
    raw = apply_overrides(raw, overrides or [])
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_blame(exc, source, overrides or [], overrides_from)) from None


def _blame(exc: ValidationError, source: str, overrides: list[str], overrides_from: str) -> str:
    """The problems, each said against what set the value: the command line's override, else the file."""
    given = {".".join(parse_override(o)[0]): o.strip() for o in overrides}
    lines = []
    for path, message in problems(exc, ExperimentConfig):
        override = next(
            (o for key, o in given.items() if path == key or path.startswith(key + ".") or key.startswith(path + ".")),
            None,
        )
        if override is None and "." in path and path.rsplit(".", 1)[0] in given:
            override = given[path.rsplit(".", 1)[0]]
        lines.append(f"{overrides_from} {override}: {message}" if override else f"{source}: {message}")
    return "; ".join(lines)


def load_config(path: Path | str | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load, override and validate an experiment config (a path or a shipped config's bare name, see
    find_config); path None gives the defaults."""
    if path is None:
        return config_from_dict({}, "defaults", overrides or ["name=mnist"])
    path = find_config(path)
    return config_from_dict(read_yaml(path), str(path), overrides)


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML, every default filled in."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the experiment config (for editors' YAML language servers)."""
    schema = ExperimentConfig.model_json_schema()
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["title"] = "mlpcli experiment config"
    return schema


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value, path) if isinstance(value, dict) else {path: value})
    return out
