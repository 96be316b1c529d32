"""The experiment config's schema: one typed, frozen object of sections, each field with its type, default and
description (config.py loads it from YAML; docs/CONFIG.md is generated from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from mlpcli.config_numbers import strict_number
from mlpcli.nn.activations import ACTIVATION_PARAMS, ACTIVATIONS, OUTPUTS
from mlpcli.nn.init import INITS
from mlpcli.nn.layout import count_parameters
from mlpcli.nn.losses import COMPATIBLE_OUTPUTS, LOSSES
from mlpcli.nn.optimizers import OPTIMIZERS
from mlpcli.nn.schedules import SCHEDULES

INPUT_SIZE = 784
NUM_CLASSES = 10
# A guard against configs that would allocate absurd amounts before anything runs
# (hidden: [1000000000]): about 400 MB of float32 weights, far beyond any MNIST model.
MAX_PARAMETERS = 100_000_000


# Config choices come from the registries (a Literal of a tuple is a Literal of its members).
ActivationName = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
OutputName = Literal[tuple(OUTPUTS)]  # type: ignore[valid-type]
LossName = Literal[tuple(LOSSES)]  # type: ignore[valid-type]
InitName = Literal[tuple(INITS)]  # type: ignore[valid-type]
OptimizerName = Literal[tuple(OPTIMIZERS)]  # type: ignore[valid-type]
ScheduleName = Literal[tuple(SCHEDULES)]  # type: ignore[valid-type]
TrackerName = Literal["tensorboard", "mlflow"]  # mlpcli.training.tracking.TRACKERS (a test holds them equal)


class StrictModel(BaseModel):
    """A frozen pydantic model that refuses unknown keys (every config section is one), and whose numbers are
    strict and finite (strict_number)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        return strict_number(value, field.annotation if field is not None else Any)


class DataConfig(StrictModel):
    """Where the digits come from and how they are prepared."""

    dataset: str = Field(
        "mnist",
        description="mnist | fashion-mnist | mnist-sample | a folder of the 4 IDX files | a labelled .csv file | "
        "points in the plane: circle, xor, gauss, spiral, moons, blobs, reg-plane, reg-gauss (regression)",
    )
    dir: Path | None = Field(
        None, description="read the dataset's four IDX files from this folder instead of the cache"
    )
    test: Path | None = Field(
        None, description="a labelled CSV file (label,pixel0,...) to use as the test split (e.g. with a CSV dataset)"
    )
    validation: Union[int, float] = Field(
        5000, description="held out from the training split: a count (>= 0) or a fraction in [0, 1)"
    )
    normalize: Literal["none", "scale01", "standardize"] = Field(
        "standardize", description="none: 0..255; scale01: pixels/255; standardize: (pixels/255 - mean) / std"
    )
    per_pixel: bool = Field(
        False, description="standardize each pixel with its own mean and std (else one global pair)"
    )
    points: int = Field(500, ge=1, le=100_000, description="points of a plane dataset (circle, xor, spiral, ...)")
    noise: float = Field(0.0, ge=0.0, le=1.0, description="plane datasets: noise, a fraction of the data's scale")
    features: list[str] = Field(
        default_factory=lambda: ["x1", "x2"],
        min_length=1,
        description="plane datasets: inputs from x1, x2, x1^2, x2^2, x1*x2, sin(x1), sin(x2)",
    )
    classes: int | None = Field(None, ge=2, le=10, description="plane datasets: classes of spiral or blobs")
    test_ratio: float = Field(
        0.5, ge=0.0, lt=1.0, description="plane datasets: the fraction of points kept for testing"
    )
    seed: int | None = Field(
        None, ge=0, lt=2**32, description="plane datasets: the points' own seed (unset: the run's seed draws them)"
    )

    @field_validator("features")
    @classmethod
    def _distinct_features(cls, value: list[str]) -> list[str]:
        repeated = sorted({f for f in value if value.count(f) > 1}) if len(value) <= 64 else None
        if repeated is None or repeated:
            what = f"{', '.join(repeated)} more than once" if repeated else f"{len(value)} of them"
            raise ValueError(f"each feature at most once (got {what})")
        return value

    @model_validator(mode="after")
    def _validation_range(self) -> DataConfig:
        v = self.validation
        if isinstance(v, bool) or (isinstance(v, float) and not 0.0 <= v < 1.0) or (isinstance(v, int) and v < 0):
            raise ValueError(f"validation: must be a count >= 0 or a fraction in [0, 1) (got {v})")
        return self


class ModelSection(StrictModel):
    """The network: hidden layer sizes, activations, initialization, dropout (ModelConfig adds the activations'
    parameters from their registry)."""

    hidden: list[int] = Field([256, 128], description="hidden layer sizes; [] is softmax regression")
    activation: Union[ActivationName, list[ActivationName]] = Field(
        "relu", description="hidden activation: one name for every hidden layer, or a list with one per layer"
    )
    output: OutputName = Field(
        "softmax",
        description="output activation: softmax (classes), sigmoid (the lecture's delta rule) or linear (regression)",
    )
    init: InitName = Field("he", description="initial weights: he, xavier (Glorot) or normal (N(0, 0.01)); biases 0")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="inverted dropout on hidden layers, in [0, 1)")
    input_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="inverted dropout on the input pixels, in [0, 1)")
    max_norm: float = Field(
        0.0, ge=0.0, description="after every step, cap each hidden unit's incoming weight norm at this (0 = off)"
    )

    @model_validator(mode="after")
    def _one_per_layer(self) -> ModelSection:
        if isinstance(self.activation, list) and len(self.activation) != len(self.hidden):
            raise ValueError(
                f"activation: {len(self.activation)} names for {len(self.hidden)} hidden layers (give one per layer)"
            )
        return self

    @model_validator(mode="after")
    def _sizes(self) -> ModelSection:
        for i, size in enumerate(self.hidden):
            if size < 1:
                raise ValueError(f"hidden.{i}: must be >= 1 (got {size})")
        total = count_parameters([INPUT_SIZE, *self.hidden, NUM_CLASSES])[2]
        if total > MAX_PARAMETERS:
            raise ValueError(
                f"hidden: {self.hidden} would need {total:,} parameters ({total * 4 / 1024**3:.1f} GiB); "
                f"the limit is {MAX_PARAMETERS:,}"
            )
        return self


# The model section with one key per activation parameter (leaky_slope, ...), each with the range and
# description its registry entry gives: a new parameterized activation needs its entry only.
ModelConfig = create_model(
    "ModelConfig",
    __base__=ModelSection,
    __module__=__name__,
    __doc__="The network: hidden layer sizes, activations and their parameters, initialization, dropout.",
    **{
        key: (float, Field(p.default, ge=p.low, lt=p.high, description=p.about)) for key, p in ACTIVATION_PARAMS.items()
    },
)


class OptimizerConfig(StrictModel):
    """How the weights move: the lecture's W <- W - lr dE/dW, with or without momentum, or Adam."""

    name: OptimizerName = Field(
        "momentum", description="sgd, momentum, nesterov, adam, adamw (Adam with decoupled weight decay)"
    )
    lr: float = Field(0.05, gt=0.0, description="learning rate (eta)")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="for momentum and nesterov")
    weight_decay: float = Field(0.0, ge=0.0, description="L2 penalty (wd/2) sum W^2 added to the loss (not biases)")
    l1: float = Field(0.0, ge=0.0, description="L1 penalty l1 sum |W| added to the loss (not biases)")
    beta1: float = Field(0.9, ge=0.0, lt=1.0, description="Adam's first-moment decay")
    beta2: float = Field(0.999, ge=0.0, lt=1.0, description="Adam's second-moment decay")


class ScheduleConfig(StrictModel):
    """Learning rate over training, updated every batch."""

    name: ScheduleName = Field("cosine", description="the learning rate by batch: constant, step or cosine")
    warmup_epochs: float = Field(0, ge=0, description="linear warm-up from 0 over this many epochs")
    step_size: int = Field(10, ge=1, description="step: multiply lr by gamma every step_size epochs")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="step: the factor")
    min_lr: float = Field(0.0, ge=0.0, description="cosine: the final learning rate")


class AugmentConfig(StrictModel):
    """Random label-preserving distortions of each training batch (0 turns each off)."""

    rotate: float = Field(0.0, ge=0.0, le=180.0, description="max rotation in degrees (uniform in +-)")
    scale: float = Field(0.0, ge=0.0, lt=1.0, description="max relative size change (+-)")
    shear: float = Field(0.0, ge=0.0, le=1.0, description="max horizontal shear factor (+-)")
    shift: float = Field(0.0, ge=0.0, le=14.0, description="max shift in pixels, x and y (+-)")
    elastic_alpha: float = Field(0.0, ge=0.0, le=1000.0, description="elastic field strength (Simard et al. 2003)")
    elastic_sigma: float = Field(0.0, ge=0.0, le=50.0, description="elastic field smoothing width in pixels")
    flip: float = Field(
        0.0, ge=0.0, le=1.0, description="probability of a left-right mirror (for clothes, never for digits)"
    )

    @model_validator(mode="after")
    def _elastic_pair(self) -> AugmentConfig:
        if bool(self.elastic_alpha) != bool(self.elastic_sigma):
            raise ValueError("elastic_alpha: elastic_alpha and elastic_sigma are set together (both > 0, or both 0)")
        if self.elastic_sigma and self.elastic_sigma < 0.5:
            raise ValueError(f"elastic_sigma: must be >= 0.5 pixels (got {self.elastic_sigma})")
        return self


class EarlyStoppingConfig(StrictModel):
    """Stop when the monitored validation metric has not improved for patience epochs."""

    patience: int = Field(5, ge=1, description="epochs without improvement before training stops")
    metric: Literal["val_loss", "val_accuracy"] = Field("val_loss", description="the validation metric watched")


class EmaConfig(StrictModel):
    """An exponential moving average of the weights: validated each epoch, and what checkpoint.npz holds."""

    decay: float = Field(0.999, gt=0.0, lt=1.0, description="per optimizer step; averages about 1/(1-decay) steps")
    every: int = Field(1, ge=1, le=1000, description="update after every N-th step (decay^N per update)")


class TrainConfig(StrictModel):
    """The loop: epochs, batch size, early stopping, float precision."""

    epochs: int = Field(20, ge=1, le=1_000_000, description="passes over the training split (also --epochs)")
    batch_size: int = Field(128, ge=1, le=65536, description="examples per optimizer step (mini-batch)")
    early_stopping: EarlyStoppingConfig | None = None
    best_by: Literal["val_loss", "val_accuracy"] = Field(
        "val_loss",
        description="what chooses the best epoch, the one checkpoint.npz keeps (train_* without a validation split; "
        "early_stopping.metric when early stopping is on)",
    )
    ema: EmaConfig | None = Field(
        None, description="average the weights: val_* and checkpoint.npz use the average, raw_val_* the raw weights"
    )
    dtype: Literal["float32", "float64"] = Field("float32", description="the network's float type")
    diagnostics: bool = Field(False, description="per-layer saturation, dead units and gradient norms each epoch")
    threads: Union[Literal["auto"], StrictInt] = Field(
        "auto",
        description="threads: auto (from the free cores, re-decided while training) or a count >= 1",
    )
    reproducible: bool = Field(
        True,
        description="the same weights whatever the thread count: every product's sum cut into fixed chunks, checked "
        "before training to give the same bits on the threads it gets, else one thread (false: one BLAS call a "
        "product, no check: a little faster, the bits may depend on the thread count)",
    )
    fused: bool = Field(
        True, description="the fused training step (learning rate folded into the gradients) where it applies"
    )
    track: list[TrackerName] = Field(
        default_factory=list, description="also log to: tensorboard (event files in RUN/tensorboard), mlflow"
    )
    histograms_every: int = Field(5, ge=1, description="tensorboard: weight and gradient histograms every N epochs")
    mlflow_uri: str | None = Field(None, description="mlflow: tracking URI (else MLFLOW_TRACKING_URI, else ./mlruns)")

    @field_validator("track")
    @classmethod
    def _distinct_trackers(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # a tracker named twice logs once

    @field_validator("threads", mode="before")
    @classmethod
    def _threads_text(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "auto":
            raise ValueError(f"must be auto or a count from 1 to 256 (got {value!r})")
        return value

    @model_validator(mode="before")
    @classmethod
    def _best_by_follows_early_stopping(cls, data: Any) -> Any:
        """Without its own best_by, the early-stopping metric chooses the best epoch, and the config says so (a
        config mlpcli writes is one it accepts back: its dump names the metric that was used)."""
        if isinstance(data, dict) and "best_by" not in data and isinstance(data.get("early_stopping"), dict):
            metric = data["early_stopping"].get("metric", "val_loss")
            if metric in ("val_loss", "val_accuracy"):
                data = {**data, "best_by": metric}
        return data

    @model_validator(mode="after")
    def _threads(self) -> TrainConfig:
        if isinstance(self.threads, bool) or (isinstance(self.threads, int) and not 1 <= self.threads <= 256):
            raise ValueError(f"threads: must be auto or a count from 1 to 256 (got {self.threads})")
        es = self.early_stopping
        if es is not None and "best_by" in self.model_fields_set and es.metric != self.best_by:
            raise ValueError(
                f"best_by is {self.best_by} but early_stopping.metric is {es.metric}: one metric chooses the best "
                "epoch and stops the run; give one of them"
            )
        return self


def folder_name_problem(name: str) -> str | None:
    """Why a run or sweep name is not a single folder name (no '/', '\\', '.', '..'), or None when it is."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or len(name) > 200:
        return f"{name!r} is not a single folder name (no '/', '\\', '.' or '..'); choose the folder itself with --out"
    return None


class ExperimentConfig(StrictModel):
    """One experiment: data, model, loss, optimizer, schedule and training loop."""

    name: str = Field("mnist", min_length=1, description="run name; the run folder defaults to runs/<name>")
    seed: int = Field(0, ge=0, description="one seed for the split, the initialization, shuffling and dropout")
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    loss: LossName = Field(
        "cross_entropy",
        description="cross_entropy (needs softmax), mse (E = 1/2 sum (o - t)^2), bce (needs sigmoid)",
    )
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="cross_entropy: targets (1 - eps) onehot + eps / 10 (validation loss plain)"
    )
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        problem = folder_name_problem(name)
        if problem:
            raise ValueError(problem)
        return name

    @model_validator(mode="after")
    def _combinations(self) -> ExperimentConfig:
        allowed = COMPATIBLE_OUTPUTS[self.loss]
        if self.model.output not in allowed:
            raise ValueError(f"loss: {self.loss} needs model.output {' or '.join(allowed)} (got {self.model.output})")
        if self.label_smoothing and self.loss != "cross_entropy":
            raise ValueError(f"label_smoothing: needs loss cross_entropy (got {self.loss})")
        if self.train.early_stopping is not None and self.data.validation == 0:
            raise ValueError("train.early_stopping: needs a validation split (data.validation > 0)")
        return self

    def layer_sizes(self, inputs: int = INPUT_SIZE, outputs: int = NUM_CLASSES) -> list[int]:
        """[inputs, hidden..., outputs]."""
        return [inputs, *self.model.hidden, outputs]
