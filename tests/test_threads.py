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
def test_a_fixed_count_is_used_and_blas_runs_one_thread_per_call(tmp_path, threads: int) -> None:
    before = _blas_threads()
    seen: list[set[int]] = []
    events: list[object] = []

    def probe(event: object) -> None:
        events.append(event)
        if isinstance(event, BatchEnd):
            seen.append(_blas_threads())

    cfg = load_config(None, [*SMALL, f"train.threads={threads}"])
    training.run(training.prepare(cfg), tmp_path / "run", callbacks=[probe])
    assert seen and all(s == {1} for s in seen)
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
    from mlpcli.training.shards import shard_count

    weights = []
    for threads in (1, 2, 1):
        cfg = load_config(None, [*SMALL, "model.hidden=[64, 32]", "train.epochs=2", f"train.threads={threads}", *extra])
        run = tmp_path / f"t{threads}-{len(weights)}"
        training.run(training.prepare(cfg), run)
        weights.append(checkpoint.load(run / "last.npz").params)
    assert shard_count([784, 64, 32, 10], cfg.train.batch_size) == 2  # two shards: the case that could differ
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
    from mlpcli.training.shards import shard_count

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
    assert shard_count([784, 64, 32, 10], cfg.train.batch_size) > 1  # more than one shard: the case that could differ
    for other in weights[1:]:
        assert all(np.array_equal(weights[0][k], other[k]) for k in weights[0])


def test_shards_add_up_to_the_whole_batchs_gradient() -> None:
    import numpy as np

    from mlpcli.nn.losses import get_loss
    from mlpcli.nn.mlp import MLP
    from mlpcli.training.shards import ShardedGradients

    rng = np.random.default_rng(0)
    model = MLP([784, 40, 10], dtype=np.float64).init(rng)
    x, y = rng.random((65, 784)), rng.integers(0, 10, 65)
    loss, grads = model.loss_and_grads(x, y)
    whole = {k: v.copy() for k, v in grads.items()}
    for workers in (1, 2):
        sharded = ShardedGradients(model, get_loss("cross_entropy"))
        loss_s, right = sharded(x, y, rng, 1.0, workers)
        sharded.close()
        assert loss_s == pytest.approx(loss, rel=1e-12) and 0 <= right <= 65
        assert all(np.allclose(model.grads[k], whole[k], rtol=1e-10, atol=1e-13) for k in whole)


def test_with_reproducible_off_blas_gets_the_threads(tmp_path) -> None:
    seen: list[set[int]] = []

    def probe(event: object) -> None:
        if isinstance(event, BatchEnd):
            seen.append(_blas_threads())

    cfg = load_config(None, [*SMALL, "train.threads=2", "train.reproducible=false"])
    training.run(training.prepare(cfg), tmp_path / "run", callbacks=[probe])
    assert seen and all(s == {2} for s in seen)


def test_a_governor_entered_again_limits_blas_again() -> None:
    governor = ThreadGovernor(2)
    for _ in range(2):  # a second `with` (bench.py enters one per epoch) must not leave BLAS its own threads
        with governor:
            assert _blas_threads() == {1}
