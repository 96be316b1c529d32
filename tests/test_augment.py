"""Augmentation, the batch stream, max-norm and input dropout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mlpcli.config import load_config
from mlpcli.data.augment import Augmenter, Distortion, bilinear, gaussian_matrix
from mlpcli.data.batches import BatchStream, Split
from mlpcli.data.prepare import fit_normalizer
from mlpcli.errors import ConfigError
from mlpcli.events import EpochEnd, EpochStart
from mlpcli.files import checkpoint
from mlpcli.nn import MLP
from mlpcli.nn.gradcheck import check_gradients
from mlpcli.training import service as training

FULL = Distortion(rotate=15, scale=0.15, shear=0.2, shift=2, elastic_alpha=34, elastic_sigma=4)
SMALL = [
    "train.threads=1",  # bit-for-bit comparisons: results depend on the BLAS thread count
    "name=a",
    "data.dataset=mnist-sample",
    "data.validation=500",
    "model.hidden=[32]",
    "train.epochs=3",
    "train.batch_size=100",
]
AUGMENT = [
    "augment.rotate=12",
    "augment.scale=0.1",
    "augment.shift=2",
    "augment.elastic_alpha=34",
    "augment.elastic_sigma=4",
]


def _digits(n: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, 28, 28)) * 255).astype(np.float32)


def _source(angle: float = 0.0, scale: float = 1.0, shear: float = 0.0, shift: tuple = (0, 0)) -> np.ndarray:
    aug = Augmenter(Distortion(rotate=1))
    coefficients = aug.coefficients(np.array([angle]), np.array([scale]), np.array([shear]), np.array([shift]))
    return aug.source_coordinates(coefficients)


def test_all_zero_is_the_identity() -> None:
    images = _digits()
    assert Augmenter(Distortion())(images, np.random.default_rng(0)) is images
    # the identity map through the sampler is exact too
    out = bilinear(images[:1], _source()).reshape(1, 28, 28)
    np.testing.assert_array_equal(out, images[:1])


def test_a_quarter_turn_lands_where_it_should() -> None:
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 4, 10:18] = 255  # a horizontal bar above the center (rows 4, columns 10..17)
    out = bilinear(image, _source(angle=np.pi / 2)).reshape(28, 28)
    # counter-clockwise as displayed: above the center goes to the left of it, standing upright
    assert set(map(tuple, np.argwhere(out > 127))) == {(r, 4) for r in range(10, 18)}
    assert out.sum() == pytest.approx(image.sum(), rel=1e-5)


def test_mirror_flips_left_and_right_only() -> None:
    image = np.zeros((2, 28, 28), np.float32)
    image[:, 3, 2:9] = 255  # a bar near the top-left corner
    aug = Augmenter(Distortion(flip=0.5))
    coefficients = aug.coefficients(np.zeros(2), np.ones(2), np.zeros(2), np.zeros((2, 2)), np.array([True, False]))
    out = bilinear(image, aug.source_coordinates(coefficients)).reshape(2, 28, 28)
    np.testing.assert_array_equal(out[0], image[0][:, ::-1])  # mirrored exactly: pixel centers map onto centers
    np.testing.assert_array_equal(out[1], image[1])
    flipped = [Augmenter(Distortion(flip=0.5)).draw(1000, np.random.default_rng(0))[0][:, 0] for _ in range(1)][0]
    assert 400 < np.count_nonzero(flipped > 13.5) < 600  # about half the images start reading from the right


def test_shift_moves_by_whole_pixels_and_clips_at_the_border() -> None:
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 10, 10] = 200
    image[0, 0, 27] = 100  # shifted right, this one leaves the image
    out = bilinear(image, _source(shift=(2, -3))).reshape(28, 28)
    assert out[7, 12] == 200 and np.count_nonzero(out) == 1


def test_scale_grows_about_the_center() -> None:
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 9:19, 9:19] = 255
    bigger = bilinear(image, _source(scale=1.5)).reshape(28, 28)
    assert np.count_nonzero(bigger > 127) > 1.8 * np.count_nonzero(image > 127)
    assert bigger[13:15, 13:15].min() == 255


def test_elastic_field_strength_and_smoothness() -> None:
    aug = Augmenter(Distortion(elastic_alpha=34, elastic_sigma=4))
    coords = aug.draw(256, np.random.default_rng(0))
    identity = _source()
    dx = (coords[0] - identity[0]).reshape(256, 28, 28)
    # Simard's field: uniform noise smoothed by a unit-sum Gaussian of width 4, times 34: std ~ 34 * 0.577 / (2
    # sqrt(pi) 4) = 1.4 pixels away from the edges; neighbours move together
    assert 0.8 < dx[:, 8:20, 8:20].std() < 2.2
    assert np.abs(np.diff(dx, axis=2)).mean() < 0.25 * dx.std()
    G = gaussian_matrix(28, 4.0)
    np.testing.assert_allclose(G.sum(axis=1), 1.0, rtol=1e-5)


def test_same_seed_same_batches_and_labels_are_kept() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((300, 784)) * 255).astype(np.uint8)
    y = rng.integers(0, 10, 300).astype(np.uint8)
    norm = fit_normalizer("standardize", x)
    order = rng.permutation(300)

    def batches(seed: int, workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
        stream = BatchStream(
            Split(x, y), 64, norm, distortion=FULL, rng=np.random.default_rng(seed), workers=workers, prefetch=2
        )
        return [(xb.copy(), yb.copy()) for xb, yb in stream.epoch(order)]

    a, b, one, three, other = batches(1, 0), batches(1, 0), batches(1, 1), batches(1, 3), batches(2, 0)
    assert [xb.shape for xb, _ in a] == [(64, 784)] * 4 + [(44, 784)]
    for (xa, ya), (xb, _), (x1, _), (x3, _), (xo, yo) in zip(a, b, one, three, other):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(xa, x1)  # worker threads change nothing, however many
        np.testing.assert_array_equal(xa, x3)
        np.testing.assert_array_equal(ya, yo)  # labels follow the rows, whatever the distortion
        assert not np.array_equal(xa, xo)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in a]), y[order])


def test_prefetch_worker_errors_reach_the_consumer() -> None:
    x = np.zeros((10, 784), np.uint8)
    stream = BatchStream(
        Split(x, np.zeros(10, np.uint8)),
        4,
        fit_normalizer("scale01", x),
        distortion=FULL,
        rng=np.random.default_rng(0),
        workers=2,
    )

    def broken(*args, **kwargs) -> np.ndarray:
        raise MemoryError("no room for the batch")

    stream.augmenter = broken  # type: ignore[assignment]
    with pytest.raises(MemoryError, match="no room"):
        list(stream.epoch(np.arange(10)))


def test_augmentation_does_not_change_shuffling_initialization_or_dropout(tmp_path: Path) -> None:
    plain = training.prepare(load_config(None, SMALL + ["model.dropout=0.3"]))
    augmented = training.prepare(load_config(None, SMALL + ["model.dropout=0.3", *AUGMENT]))
    np.testing.assert_array_equal(plain.model.flat, augmented.model.flat)
    assert plain.state.rng.bit_generator.state == augmented.state.rng.bit_generator.state
    assert plain.batches.augmenter is None and augmented.batches.augmenter is not None


def test_resume_with_augmentation_is_bit_for_bit(tmp_path: Path) -> None:
    extra = (*SMALL, *AUGMENT, "model.dropout=0.2", "model.input_dropout=0.1", "model.max_norm=2.0")
    training.run(training.prepare(load_config(None, extra)), tmp_path / "full")

    def stop_at_2(event: object) -> None:
        if isinstance(event, EpochStart) and event.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(training.Interrupted) as info:
        training.run(training.prepare(load_config(None, extra)), tmp_path / "part", callbacks=[stop_at_2])
    resumed = training.prepare(load_config(None, extra))
    training.run(resumed, tmp_path / "part", resume=checkpoint.load(info.value.last))
    full, part = checkpoint.load(tmp_path / "full" / "last.npz"), checkpoint.load(tmp_path / "part" / "last.npz")
    for k in full.params:
        np.testing.assert_array_equal(full.params[k], part.params[k])
    rows = [
        [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader((d / "metrics.csv").open())]
        for d in (tmp_path / "full", tmp_path / "part")
    ]
    assert rows[0] == rows[1]


def test_max_norm_holds_after_every_step() -> None:
    p = training.prepare(
        load_config(None, [*SMALL, "model.hidden=[64, 32]", "optimizer.lr=0.5", "model.max_norm=1.5", "train.epochs=1"])
    )
    norms: list[float] = []
    step = p.model.apply_max_norm

    def checked(c: float) -> None:
        step(c)
        for l in (1, 2):  # hidden layers: every unit's incoming weight vector
            norms.append(float(np.linalg.norm(p.model.params[f"W{l}"], axis=0).max()))

    p.model.apply_max_norm = checked  # type: ignore[method-assign]
    from mlpcli.nn.optimizers import make_optimizer
    from mlpcli.training.loop import LoopSettings, fit

    fit(p.model, make_optimizer("momentum", 0.5), p.batches, LoopSettings.from_config(p.cfg, p.val), p.state)
    assert len(norms) == 2 * p.batches.steps
    assert max(norms) <= 1.5 * (1 + 1e-5)  # float32
    assert max(norms) > 1.4  # the cap was reached, so the test saw it act
    # the output layer is not capped
    assert np.linalg.norm(p.model.params["W3"], axis=0).max() > 0


def test_input_dropout_gradients_under_fixed_masks() -> None:
    rng = np.random.default_rng(5)
    model = MLP([6, 5, 3], "tanh", "softmax", dropout=0.3, input_dropout=0.25, dtype=np.float64).init(rng)
    x = rng.normal(size=(4, 6))
    masks = {0: (rng.random((4, 6)) >= 0.25) / 0.75, 1: (rng.random((4, 5)) >= 0.3) / 0.7}
    errors = check_gradients(model, x, rng.integers(0, 3, 4), "cross_entropy", masks=masks)
    assert max(errors.values()) < 1e-6, errors
    with pytest.raises(ValueError, match="masks"):
        check_gradients(model, x, rng.integers(0, 3, 4), "cross_entropy")


def test_input_dropout_drops_pixels_in_training_only() -> None:
    rng = np.random.default_rng(0)
    model = MLP([100, 4], "relu", "linear", input_dropout=0.5, dtype=np.float64).init(rng)
    x = np.ones((50, 100))
    model.forward_train(x, np.random.default_rng(1))
    dropped = model._acts[0]
    assert 0.4 < np.mean(dropped == 0) < 0.6 and set(np.unique(dropped)) == {0.0, 2.0}
    np.testing.assert_array_equal(model.logits(x), x @ model.params["W1"] + model.params["b1"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("augment.elastic_alpha=34", "elastic_alpha and elastic_sigma are set together"),
        ("augment.rotate=-5", "augment.rotate: must be >= 0"),
        ("augment.twist=5", "augment.twist: unknown key"),
        ("model.max_norm=-1", "model.max_norm: must be >= 0"),
        ("model.input_dropout=1", "model.input_dropout: must be < 1"),
    ],
)
def test_bad_augment_and_regularizer_keys_name_the_field(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_augmented_training_still_learns(tmp_path: Path) -> None:
    events: list[object] = []
    result = training.run(
        training.prepare(load_config(None, [*SMALL, *AUGMENT, "train.epochs=4"])),
        tmp_path / "r",
        callbacks=[events.append],
    )
    assert result.test.accuracy > 0.8
    assert sum(isinstance(e, EpochEnd) for e in events) == 4
