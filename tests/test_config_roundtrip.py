"""A config that mlpcli writes is always one it accepts back: any valid config, dumped as YAML (as every run folder
and checkpoint stores it), loads again to the same config (a property over the schema, with Hypothesis); and a
run started from such a config resumes from its last.npz."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union

import annotated_types
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from mlpcli.config import ExperimentConfig, config_from_dict, dump_config
from mlpcli.errors import ConfigError

# Values that need no download and no file: the shipped sample, and points in the plane.
STRINGS = {
    "name": st.sampled_from(["a", "run-1", "quickstart"]),
    "dataset": st.sampled_from(["mnist-sample", "spiral"]),
}


def _bounds(field: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(m, getattr(annotated_types, name.capitalize())):
                out[name] = getattr(m, name)
    return out


def _number(kind: type, bounds: dict[str, float]) -> st.SearchStrategy:
    lo = bounds.get("ge", bounds.get("gt"))
    hi = bounds.get("le", bounds.get("lt"))
    if kind is int:
        lo = -3 if lo is None else int(lo) + (1 if "gt" in bounds else 0)
        hi = lo + 50 if hi is None else int(hi) - (1 if "lt" in bounds else 0)
        return st.integers(lo, min(hi, lo + 1000))
    lo = -10.0 if lo is None else float(lo)
    hi = lo + 10.0 if hi is None else float(hi)
    return st.floats(lo, hi, allow_nan=False, exclude_min="gt" in bounds, exclude_max="lt" in bounds)


def _value(annotation: Any, name: str, field: Any = None) -> st.SearchStrategy:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if name in STRINGS:
        return STRINGS[name]
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (Union, types.UnionType):
        return st.one_of([_value(a, name) for a in args])
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return section(annotation)
    if origin is list:
        if name == "hidden":
            return st.lists(st.integers(1, 24), max_size=3)
        return st.lists(_value(args[0], name), max_size=3, unique=True)
    if annotation is bool:
        return st.booleans()
    if annotation in (int, float):
        return _number(annotation, _bounds(field) if field is not None else {})
    if getattr(annotation, "__name__", "") == "StrictInt":
        return _number(int, _bounds(field) if field is not None else {})
    return st.none()  # paths: unset (no file is needed)


def section(model: type[BaseModel]) -> st.SearchStrategy:
    """Raw dicts of any subset of model's keys, each with a value of its type within its bounds."""
    fields = {name: _value(f.annotation, name, f) for name, f in model.model_fields.items()}
    return st.fixed_dictionaries({}, optional=fields)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(section(ExperimentConfig))
def test_any_valid_config_dumped_loads_back_equal(raw: dict[str, Any]) -> None:
    try:
        cfg = config_from_dict(raw, "generated")
    except ConfigError:
        assume(False)  # not a valid config: nothing is written for it
    text = dump_config(cfg)
    again = config_from_dict(yaml.safe_load(text), "its dump")
    assert again == cfg
    assert dump_config(again) == text


def test_the_early_stopping_metric_chooses_the_best_epoch_in_the_dump_too() -> None:
    cfg = config_from_dict({"data": {"validation": 100}, "train": {"early_stopping": {"metric": "val_accuracy"}}}, "c")
    assert cfg.train.best_by == "val_accuracy"
    assert config_from_dict(yaml.safe_load(dump_config(cfg)), "dump") == cfg
    with pytest.raises(ConfigError, match="one metric chooses the best"):
        config_from_dict(
            {
                "data": {"validation": 100},
                "train": {"best_by": "val_loss", "early_stopping": {"metric": "val_accuracy"}},
            },
            "c",
        )


RESUMABLE = [
    ["train.early_stopping={patience: 5, metric: val_accuracy}"],
    ["train.best_by=val_accuracy", "train.ema={decay: 0.9}"],
    ["optimizer.name=adamw", "schedule.name=step", "schedule.step_size=1", "model.dropout=0.2"],
    [
        "data.dataset=spiral",
        "data.points=300",
        "data.validation=30",
        "model.hidden=[8]",
        "loss=mse",
        "model.output=sigmoid",
    ],
    ["data.dataset=reg-gauss", "data.points=300", "data.validation=30", "loss=mse", "model.output=linear"],
]


@pytest.mark.parametrize("extra", RESUMABLE, ids=lambda e: e[0].split("=")[0] + "=" + e[0].split("=")[1][:20])
def test_a_run_resumes_from_its_own_last_checkpoint(tmp_path, extra: list[str]) -> None:
    """Interrupted after its first epoch, a run resumes from its last.npz (its stored config accepted back) and
    ends with the weights of the same run uninterrupted."""
    import numpy as np

    from mlpcli.config import load_config
    from mlpcli.events import EpochEnd
    from mlpcli.files import checkpoint
    from mlpcli.training import service as training
    from mlpcli.training.lifecycle import train_run
    from mlpcli.training.resume import plan_resume

    base = ["name=r", "data.dataset=mnist-sample", "data.validation=500", "model.hidden=[16]", "train.epochs=3"]
    cfg = load_config(None, [*base, "train.threads=1", *extra])
    train_run(cfg, out=tmp_path / "whole")

    def stop_after_first(event: object) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(training.Interrupted) as info:
        train_run(cfg, out=tmp_path / "cut", callbacks=[stop_after_first])
    plan = plan_resume(info.value.last, None, [])
    result = train_run(plan.config, resume=plan)
    assert result.run_dir == tmp_path / "cut"
    whole, cut = checkpoint.load(tmp_path / "whole" / "last.npz"), checkpoint.load(tmp_path / "cut" / "last.npz")
    for name in whole.params:
        np.testing.assert_array_equal(whole.params[name], cut.params[name])
