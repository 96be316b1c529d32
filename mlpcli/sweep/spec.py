"""The sweep file: a base experiment, the parameters to vary, the search method, the budget.

name: lecture-activations
base: configs/quickstart.yaml        # relative to this file, else to the current folder
method: grid                         # grid | random | bayes (Optuna's TPE)
metric: {name: val_accuracy, goal: maximize}
parameters:
  model.activation: {values: [sigmoid, tanh, relu]}
  optimizer.lr: {distribution: log_uniform, min: 0.001, max: 0.3}
budget: {trials: 10, parallel: 2}
early_terminate: {type: median, min_epochs: 2}
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from mlpcli.config import StrictModel, config_from_dict, find_config, folder_name_problem, read_yaml
from mlpcli.config_errors import format_validation_error
from mlpcli.errors import ConfigError

MAX_GRID = 10_000


class Parameter(StrictModel):
    """One swept key: a list of values, or a distribution between min and max."""

    values: list[Any] | None = None
    distribution: Literal["uniform", "log_uniform", "int_uniform"] | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Parameter:
        if (self.values is None) == (self.distribution is None):
            raise ValueError("give either values: [...] or distribution: with min and max")
        if self.values is not None and not self.values:
            raise ValueError("values: needs at least one value")
        if self.distribution is not None:
            if self.min is None or self.max is None or not (math.isfinite(self.min) and math.isfinite(self.max)):
                raise ValueError(f"{self.distribution} needs finite min and max (got min {self.min}, max {self.max})")
            if not self.min < self.max:
                raise ValueError(f"{self.distribution} needs min < max (got min {self.min}, max {self.max})")
            if self.distribution == "log_uniform" and self.min <= 0:
                raise ValueError(f"log_uniform needs min > 0 (got {self.min})")
        return self

    def endpoints(self) -> list[Any]:
        """Values worth validating before the sweep starts: every listed value, or min and max."""
        if self.values is not None:
            return list(self.values)
        ends = [self.min, self.max]
        return [int(math.ceil(e)) for e in ends] if self.distribution == "int_uniform" else ends  # type: ignore[arg-type]


class Metric(StrictModel):
    """What a trial is judged by: its best epoch's value."""

    name: Literal["val_accuracy", "val_loss", "train_accuracy", "train_loss"] = "val_accuracy"
    goal: Literal["maximize", "minimize"] = "maximize"


class Budget(StrictModel):
    """How many trials, how many at once."""

    trials: int | None = Field(None, ge=1, le=100_000)
    parallel: int = Field(1, ge=1, le=1024)


class EarlyTerminate(StrictModel):
    """Stop unpromising trials early (Optuna pruners)."""

    type: Literal["median", "asha"] = "median"
    min_epochs: int = Field(1, ge=1)


class SweepSpec(StrictModel):
    """A whole sweep file."""

    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    base: Path
    method: Literal["grid", "random", "bayes"] = "grid"
    metric: Metric = Metric()
    parameters: dict[str, Parameter] = Field(min_length=1)
    budget: Budget = Budget()
    early_terminate: EarlyTerminate | None = None
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the search itself (random and bayes samplers)")

    @model_validator(mode="after")
    def _folder_name(self) -> SweepSpec:
        problem = folder_name_problem(self.name)
        if problem:
            raise ValueError(f"name: {problem}")
        return self

    @model_validator(mode="after")
    def _grid_needs_values(self) -> SweepSpec:
        if self.method == "grid":
            for key, p in self.parameters.items():
                if p.values is None:
                    raise ValueError(f"parameters.{key}: a grid sweep needs values: [...], not a distribution")
            if self.grid_size() > MAX_GRID:
                raise ValueError(
                    f"parameters: the grid has {self.grid_size():,} combinations, more than {MAX_GRID:,}; "
                    "use method: random (or bayes) with budget: {trials: N} to sample it"
                )
        return self

    def search(self) -> dict[str, Any]:
        """What makes a study: method, metric and parameters (a rerun may change the budget, not these)."""
        return self.model_dump(mode="json", include={"method", "metric", "parameters"})

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the listed values (grid sweeps)."""
        keys = list(self.parameters)
        combos = itertools.product(*(self.parameters[k].endpoints() for k in keys))
        return [dict(zip(keys, combo)) for combo in combos]

    def grid_size(self) -> int:
        """How many combinations the listed values make."""
        return math.prod(len(p.endpoints()) for p in self.parameters.values())

    @property
    def trials(self) -> int:
        """The budget: as given, or the grid's size for a grid sweep."""
        return self.budget.trials or (self.grid_size() if self.method == "grid" else 10)


def load_sweep(path: Path) -> tuple[SweepSpec, dict[str, Any], Path]:
    """(spec, the base config as a raw mapping, the base's path) from a sweep file (or a shipped sweep's bare
    name); ConfigError naming the key."""
    path = find_config(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a sweep file must be a mapping (name, base, method, metric, parameters, budget)")
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc, SweepSpec)}") from None
    candidates = [spec.base] if spec.base.is_absolute() else [path.parent / spec.base, Path.cwd() / spec.base]
    base_path = next((c for c in candidates if c.is_file()), None)
    if base_path is None:
        raise ConfigError(f"{path}: base: no such config file {spec.base} (looked beside the sweep file and here)")
    base = read_yaml(base_path)
    if not isinstance(base, dict):
        raise ConfigError(f"{base_path}: the base config must be a mapping")
    config_from_dict(base, str(base_path))  # the base itself must be valid
    return spec, base, base_path


def encode(value: Any) -> Any:
    """Optuna's categorical choices are scalars: lists and mappings travel as JSON text."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def decode(value: Any) -> Any:
    """The inverse of encode."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def trial_overrides(params: dict[str, Any]) -> list[str]:
    """--set style overrides (key=YAML value) for a trial's parameters."""
    return [f"{key}={json.dumps(value)}" for key, value in params.items()]


def check_trials(spec: SweepSpec, base: dict[str, Any], base_path: Path) -> list[str]:
    """One line per trial config that would be invalid, naming the key (empty when all are fine).

    Grid sweeps check every combination; random and bayes check every listed value and every
    distribution's ends in combination, so nothing that can be drawn is left unchecked by kind.
    """
    combos = (
        spec.grid() if spec.grid_size() <= MAX_GRID else [{k: p.endpoints()[0] for k, p in spec.parameters.items()}]
    )
    problems = []
    for params in combos:  # every combination of values (or of a distribution's ends) that a trial may get
        try:
            config_from_dict(base, str(base_path), trial_overrides(params), "the sweep's parameters:")
        except ConfigError as exc:
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            problems.append(f"with {shown}: {str(exc).removeprefix(str(base_path) + ': ')}")
    return problems
