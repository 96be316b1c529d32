"""Threads: a fixed count is really used; auto decides from free cores and re-decides; the count changes the
speed, never the weights."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info

from mlpcli.config import load_config
from mlpcli.errors import ConfigError
from mlpcli.events import BatchEnd, Message
from mlpcli.training import service as training
from mlpcli.training.threads import LoadSample, ThreadGovernor, usable_cores

SMALL = ["name=t", "data.dataset=mnist-sample", "data.validation=500", "model.hidden=[32]", "train.epochs=1"]


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


ONE_CORE = pytest.mark.skipif(usable_cores() < 2, reason="this machine lets the process use 1 core")


@pytest.mark.parametrize("threads", [1, pytest.param(2, marks=ONE_CORE)])
def test_a_fixed_count_is_what_blas_gets(tmp_path, threads: int) -> None:
    before = _blas_threads()
    seen: list[set[int]] = []
    events: list[object] = []

    def probe(event: object) -> None:
        events.append(event)
        if isinstance(event, BatchEnd):
            seen.append(_blas_threads())

    cfg = load_config(None, [*SMALL, f"train.threads={threads}"])
    training.run(training.prepare(cfg), tmp_path / "run", callbacks=[probe])
    assert seen and all(s == {threads} for s in seen)
    assert any(isinstance(e, Message) and f"threads: {threads} (as configured)" in e.text for e in events)
    assert _blas_threads() == before  # given back afterwards


def _governor(cores: int, reserve: int = 0) -> ThreadGovernor:
    g = ThreadGovernor(None, reserve=reserve)
    g.cores = cores
    return g


@pytest.mark.parametrize(
    ("cores", "others", "reserve", "expected"),
    [
        (2, 0.0, 0, 2),  # a quiet 2-core machine: both
        (2, 1.0, 0, 1),  # a busy loop on one core: the other one only
        (2, 2.0, 0, 1),  # never fewer than one
        (2, 0.0, 1, 1),  # augmenting: one core left for the batch worker
        (8, 3.0, 1, 4),
        (1, 0.0, 1, 1),
        (2, None, 0, 2),  # load unknown: every usable core
    ],
)
def test_auto_counts_free_cores(cores: int, others: float | None, reserve: int, expected: int) -> None:
    threads, reason = _governor(cores, reserve).decide(others)
    assert threads == expected and reason.startswith(f"auto: {cores} cores")


def test_auto_redecides_when_the_machine_gets_busy() -> None:
    g = _governor(2)
    notes: list[object] = []
    g.notify = notes.append
    g.apply(2, "start")
    g._last = LoadSample(wall=0.0, busy=0.0, own=0.0)
    g.sample = lambda: LoadSample(wall=1.0, busy=2.0, own=1.0)  # type: ignore[method-assign]
    g(BatchEnd(1, 1, 0.5, 100))  # in that second another process kept one core busy
    assert g.threads == 1 and "threads 2 -> 1" in notes[0].text  # type: ignore[attr-defined]
    g.stop()


@pytest.mark.parametrize("value", ["0", "many", "true", "-2"])
def test_bad_threads_value_names_the_field(value: str) -> None:
    with pytest.raises(ConfigError, match="train.threads"):
        load_config(None, [f"train.threads={value}"])


@pytest.mark.parametrize("extra", [[], ["model.dropout=0.2", "model.input_dropout=0.1", "train.batch_size=75"]])
def test_one_and_two_threads_train_the_same_weights_bit_for_bit(tmp_path, extra: list[str]) -> None:
    import numpy as np

    from mlpcli.files import checkpoint
    from mlpcli.nn.products import REDUCTION_CHUNK

    weights = []
    for threads in (1, 2, 1):
        cfg = load_config(None, [*SMALL, "model.hidden=[64, 32]", "train.epochs=2", f"train.threads={threads}", *extra])
        run = tmp_path / f"t{threads}-{len(weights)}"
        training.run(training.prepare(cfg), run)
        weights.append(checkpoint.load(run / "last.npz").params)
    assert 784 > REDUCTION_CHUNK  # the first layer's sum is cut: the case that could differ
    for other in weights[1:]:
        assert all(np.array_equal(weights[0][k], other[k]) for k in weights[0])


OPTIMIZER_NAMES = ["sgd", "momentum", "nesterov", "adam", "adamw"]


@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_workers_one_to_four_train_the_same_weights_with_dropout_and_augmentation(tmp_path, optimizer) -> None:
    """`--threads N` changes the speed, never the weights: 1, 2, 3 and 4 workers (more than this machine's cores
    is allowed) after an epoch of every optimizer, with dropout on the inputs and hidden units and the digits
    distorted on the fly."""
    import numpy as np

    from mlpcli.files import checkpoint
    from mlpcli.nn.optimizers import OPTIMIZERS
    from mlpcli.nn.products import REDUCTION_CHUNK

    assert sorted(OPTIMIZER_NAMES) == sorted(OPTIMIZERS)
    extra = [
        f"optimizer.name={optimizer}",
        "optimizer.lr=0.01",
        "model.hidden=[64, 32]",
        "model.dropout=0.2",
        "model.input_dropout=0.1",
        "augment.rotate=10",
        "augment.shift=2",
        "data.validation=4000",  # 1,000 training digits: an epoch of 16 batches
        "train.batch_size=64",
    ]
    weights = []
    for threads in (1, 2, 3, 4):
        run = tmp_path / f"t{threads}"
        cfg = load_config(None, [*SMALL, f"train.threads={threads}", *extra])
        training.run(training.prepare(cfg), run)
        weights.append(checkpoint.load(run / "last.npz").params)
    assert 784 > REDUCTION_CHUNK  # the first layer's sum is cut: the case that could differ
    for other in weights[1:]:
        assert all(np.array_equal(weights[0][k], other[k]) for k in weights[0])


def test_a_count_that_would_change_the_bits_is_replaced_by_one_thread() -> None:
    """Where BLAS gives other bits on N threads (a BLAS without OpenBLAS's property), the governor trains on one
    thread, says why, and asks about each count once."""
    asked: list[int] = []

    def same_bits(n: int) -> bool:
        asked.append(n)
        return n == 3

    notes: list[object] = []
    with ThreadGovernor(2, notify=notes.append, same_bits=same_bits) as governor:
        assert governor.threads == 1 and "other bits on 2 threads" in governor.reason
        assert _blas_threads() == {1}
        governor.apply(2, "again")
        governor.apply(3, "three agree")
        assert governor.threads == 3 and _blas_threads() == {3}
    assert asked == [2, 3]


def test_this_machines_blas_agrees_for_every_count_and_shape() -> None:
    """What reproducible training rests on, checked here for 2 to 4 threads (more than this machine's cores is
    allowed) and the shapes of the three benchmark networks plus odd ones."""
    from mlpcli.training.blas_agree import thread_counts_agree

    for sizes, rows in [([784, 256, 128, 10], {128, 96}), ([784, 100, 10], {32}), ([784, 1024, 1024, 10], {256, 96})]:
        for threads in (2, 3, 4):
            assert thread_counts_agree(sizes, rows, "float32", threads, 384)
    assert thread_counts_agree([1000, 37, 5], {1, 7, 500}, "float64", 3, 384)


def test_with_reproducible_off_blas_gets_the_threads(tmp_path) -> None:
    seen: list[set[int]] = []

    def probe(event: object) -> None:
        if isinstance(event, BatchEnd):
            seen.append(_blas_threads())

    cfg = load_config(None, [*SMALL, "train.threads=2", "train.reproducible=false"])
    p = training.prepare(cfg)
    assert p.model.reduction_chunk is None  # one BLAS call a product, and no check
    training.run(p, tmp_path / "run", callbacks=[probe])
    assert seen and all(s == {2} for s in seen)


def test_a_governor_entered_again_limits_blas_again() -> None:
    governor = ThreadGovernor(2)
    for _ in range(2):  # a second `with` (bench.py enters one per epoch) must not leave BLAS its own threads
        with governor:
            assert _blas_threads() == {2}
