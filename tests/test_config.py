"""The experiment config: defaults, overrides, and one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpcli.config import ExperimentConfig, dump_config, json_schema, load_config
from mlpcli.errors import ConfigError

CONFIGS = Path(__file__).parent.parent / "configs"


@pytest.mark.parametrize("name", ["mnist", "mnist-classic", "fashion-mnist", "quickstart"])
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.name == name


def test_classic_config_is_the_lecture_network() -> None:
    cfg = load_config(CONFIGS / "mnist-classic.yaml")
    assert (cfg.model.activation, cfg.model.output, cfg.loss, cfg.optimizer.name) == (
        "sigmoid",
        "sigmoid",
        "mse",
        "sgd",
    )


def test_overrides_are_parsed_as_yaml_and_validated(tmp_path) -> None:
    cfg = load_config(
        CONFIGS / "mnist.yaml", ["optimizer.lr=0.1", "model.hidden=[64, 32]", "train.early_stopping={patience: 2}"]
    )
    assert cfg.optimizer.lr == 0.1 and cfg.model.hidden == [64, 32]
    assert cfg.train.early_stopping is not None and cfg.train.early_stopping.patience == 2
    with pytest.raises(ConfigError, match="optimizer.lr: must be > 0"):
        load_config(CONFIGS / "mnist.yaml", ["optimizer.lr=-0.1"])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("optimizer:\n  lr: -0.1\n", "optimizer.lr: must be > 0.0 (got -0.1)"),
        ("optimizer:\n  lr: 0\n", "optimizer.lr: must be > 0.0 (got 0)"),
        ("optimizer:\n  lrr: 0.1\n", "optimizer.lrr: unknown key; did you mean lr?"),
        ("modle:\n  hidden: [3]\n", "modle: unknown key; did you mean model?"),
        ("model:\n  hidden: [0]\n", "model.hidden.0: must be >= 1"),
        ("model:\n  hidden: [-5, 3]\n", "model.hidden.0: must be >= 1"),
        ("model:\n  hidden: [1000000000]\n", "model.hidden: [1000000000] would need"),
        ("model:\n  dropout: 1.0\n", "model.dropout: must be < 1.0"),
        ("model:\n  dropout: -0.1\n", "model.dropout: must be >= 0.0"),
        ("model:\n  activation: swish\n", "model.activation: must be one of"),
        ("train:\n  epochs: many\n", "train.epochs: input should be a valid integer"),
        ("train:\n  batch_size: 0\n", "train.batch_size: must be >= 1"),
        ("loss: bce\n", "loss: bce needs model.output sigmoid"),
        ("label_smoothing: 1.0\n", "label_smoothing: must be < 1.0"),
        ("loss: mse\nlabel_smoothing: 0.1\n", "label_smoothing: needs loss cross_entropy (got mse)"),
        ("model:\n  output: sigmoid\n", "loss: cross_entropy needs model.output softmax"),
        ("data:\n  validation: 1.5\n", "data.validation: must be a count >= 0 or a fraction in [0, 1)"),
        ("data:\n  validation: 0\ntrain:\n  early_stopping: {patience: 3}\n", "needs a validation split"),
        ("- a\n- b\n", "a config must be a mapping"),
        ("just a string\n", "a config must be a mapping"),
        ("", "the config is empty"),
        ("model: [1\n", "YAML syntax error at line 2, column 1"),
        ("a: b: c\n", "YAML syntax error at line 1, column 5"),
    ],
)
def test_bad_configs_give_one_line_naming_file_and_field(tmp_path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_missing_file_and_folder(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_bad_override_syntax() -> None:
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_config(CONFIGS / "mnist.yaml", ["optimizer.lr"])
    with pytest.raises(ConfigError, match="not a section"):
        load_config(CONFIGS / "mnist.yaml", ["loss.x=1"])


def test_dump_round_trips_and_is_frozen(tmp_path) -> None:
    cfg = load_config(CONFIGS / "mnist.yaml")
    again = load_config(_write(tmp_path, dump_config(cfg)))
    assert again == cfg
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        cfg.seed = 3  # type: ignore[misc]


def test_json_schema_describes_every_section() -> None:
    schema = json_schema()
    assert set(schema["properties"]) == set(ExperimentConfig.model_fields)
    assert "$defs" in schema and "OptimizerConfig" in schema["$defs"]


def _numeric_keys() -> list[tuple[str, ...]]:
    """Every config key whose value is a number (or a list of numbers), walked from the schema itself."""
    from typing import get_args

    from pydantic import BaseModel

    from mlpcli.config import ExperimentConfig

    def admits(annotation: object, kind: type) -> bool:
        return annotation is kind or any(admits(a, kind) for a in get_args(annotation))

    keys: list[tuple[str, ...]] = []

    def walk(model: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            section = next(
                (
                    a
                    for a in (field.annotation, *get_args(field.annotation))
                    if isinstance(a, type) and issubclass(a, BaseModel)
                ),
                None,
            )
            if section is not None:
                walk(section, (*prefix, name))
            elif (admits(field.annotation, float) or admits(field.annotation, int)) and not admits(
                field.annotation, bool
            ):
                keys.append((*prefix, name))

    walk(ExperimentConfig, ())
    return keys


NUMERIC_KEYS = _numeric_keys()


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(NUMERIC_KEYS),
    bad=st.sampled_from([float("inf"), float("-inf"), float("nan"), True, False, 1e39, -1e300, 2**70, "1e300", ".inf"]),
    in_list=st.booleans(),
)
def test_every_config_number_is_strict_and_finite(key, bad, in_list) -> None:
    """Whatever numeric key of the schema, a boolean, a non-finite number, one beyond float32 or int64 is refused
    naming the key (YAML's .inf and 1e300 arrive as text: refused too)."""
    from mlpcli.config import config_from_dict
    from mlpcli.errors import ConfigError

    raw: dict = {}
    node = raw
    for part in key[:-1]:
        node = node.setdefault(part, {})
    node[key[-1]] = [bad] if in_list and key[-1] == "hidden" else bad
    if bad == ".inf":
        node[key[-1]] = "inf"
    with pytest.raises(ConfigError) as refused:
        config_from_dict(raw, "x")
    assert ".".join(key) in str(refused.value)
