"""The shard helper process: the same bits as the training process, and nothing left behind when it fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlpcli.nn.losses import get_loss
from mlpcli.nn.mlp import MLP
from mlpcli.training import shard_process, shards, threads
from mlpcli.training.shard_process import ShardHelper
from mlpcli.training.shards import ShardedGradients
from mlpcli.training.threads import _process_seconds

pytestmark = pytest.mark.skipif(not shard_process.supported(), reason="the helper runs on x86-64 only")


@pytest.fixture(autouse=True)
def one_blas_thread():  # noqa: ANN201
    """As training runs shards: one BLAS thread a call (the thread governor's job in a real run)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _wait_until(condition, what: str) -> None:  # noqa: ANN001
    """Poll a condition the operating system makes true soon (a process starting or ending)."""
    for _ in range(3000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} did not happen")


def _ready(sharded: ShardedGradients, x: np.ndarray, y: np.ndarray) -> ShardHelper:
    """Start sharded's helper now and wait until it takes work."""
    sharded._batches = shards.HELPER_AFTER_BATCHES
    sharded(x, y, np.random.default_rng(0), 1.0, 2)
    helper = sharded._helper
    assert helper is not None
    _wait_until(helper.ready, "the helper starting")
    return helper


def _train(
    model: MLP, sharded: ShardedGradients, x: np.ndarray, y: np.ndarray, workers: int, batch: int = 64
) -> list[float]:
    rng, losses = np.random.default_rng(1), []
    for i in range(0, len(y), batch):
        loss, _ = sharded(x[i : i + batch], y[i : i + batch], rng, 0.05, workers)
        model.flat -= model.grad_flat
        losses.append(loss)
    return losses


MODELS = [
    {"layer_sizes": [784, 48, 24, 10]},
    {"layer_sizes": [784, 48, 24, 10], "dropout": 0.3, "input_dropout": 0.1},
    {"layer_sizes": [784, 40, 10], "activation": "leaky_relu", "leaky_slope": 0.2, "output": "sigmoid"},
    {"layer_sizes": [784, 40, 30, 10], "activation": ["tanh", "gelu"], "dtype": np.float64},
    {"layer_sizes": [784, 40, 10], "output": "sigmoid", "dropout": 0.2},
]
LOSSES = [("cross_entropy", 0.0), ("cross_entropy", 0.0), ("mse", 0.0), ("cross_entropy", 0.1), ("bce", 0.0)]


@pytest.mark.parametrize(("kwargs", "loss"), list(zip(MODELS, LOSSES)))
def test_the_helper_trains_the_same_bits_as_one_thread(kwargs: dict, loss: tuple[str, float]) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((1000, 784)).astype(kwargs.get("dtype", np.float32))
    y = rng.integers(0, 10, 1000)
    results = []
    for workers in (1, 2):
        model = MLP(**kwargs).init(np.random.default_rng(3))
        sharded = ShardedGradients(model, get_loss(*loss))
        if workers == 2:
            helper = _ready(sharded, x[:64], y[:64])
            model.init(np.random.default_rng(3))  # new parameters: the helper must follow them
        losses = _train(model, sharded, x, y, workers)
        if workers == 2:
            assert sharded._helper is helper and helper.proc is not None  # it did the work (1000 rows: 15 x 64 + 40)
        sharded.close()
        results.append((model.flat.copy(), losses))
    assert np.array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_a_killed_helper_is_replaced_by_a_thread_without_changing_a_bit() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((600, 784)).astype(np.float32), rng.integers(0, 10, 600)
    reference = MLP([784, 48, 10]).init(np.random.default_rng(3))
    plain = ShardedGradients(reference, get_loss("cross_entropy"), helper=False)
    _train(reference, plain, x, y, 1)
    plain.close()

    model = MLP([784, 48, 10]).init(np.random.default_rng(3))
    sharded = ShardedGradients(model, get_loss("cross_entropy"))
    helper = _ready(sharded, x[:64], y[:64])
    model.init(np.random.default_rng(3))
    _train(model, sharded, x[:320], y[:320], 2)
    pid = helper.proc.pid
    os.kill(pid, signal.SIGKILL)
    helper.proc.wait()
    _train(model, sharded, x[320:], y[320:], 2)
    assert sharded._helper is None and pid not in threads._children()  # dropped (and reaped); a thread did the rest
    sharded.close()
    assert np.array_equal(model.flat, reference.flat)


def _direct_helper(rows: int = 32) -> tuple[ShardHelper, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    helper = ShardHelper(MLP([784, 32, 10]).init(rng), get_loss("cross_entropy"), rows)
    helper.start()
    _wait_until(helper.ready, "the helper starting")
    return helper, rng.random((rows, 784)).astype(np.float32), rng.integers(0, 10, rows)


def test_a_helper_dying_in_the_middle_of_a_shard_is_noticed() -> None:
    helper, x, y = _direct_helper()
    os.kill(helper.proc.pid, signal.SIGSTOP)  # it cannot finish the shard it is given
    helper.submit(x, y, None, 64, 1.0)
    os.kill(helper.proc.pid, signal.SIGKILL)
    with pytest.raises(shard_process.HelperFailed, match="exited"):
        helper.result()
    helper.close()
    helper.close()  # a second close does nothing


def test_a_stopped_helper_is_given_up_after_the_stall_limit(monkeypatch) -> None:
    monkeypatch.setattr(shard_process, "STALL_SECONDS", 0.2)
    helper, x, y = _direct_helper()
    os.kill(helper.proc.pid, signal.SIGSTOP)
    helper.submit(x, y, None, 64, 1.0)
    with pytest.raises(shard_process.HelperFailed, match="no progress"):
        helper.result()
    proc = helper.proc
    helper.close()  # kills it: a stopped process cannot read the stop counter
    assert proc.poll() is not None


def test_an_error_in_the_helper_is_reported_and_a_wider_shard_refused() -> None:
    helper, x, y = _direct_helper()
    helper.submit(x, np.full(len(y), 99), None, 64, 1.0)  # no class 99
    with pytest.raises(shard_process.HelperFailed, match="IndexError"):
        helper.result()
    with pytest.raises(shard_process.HelperFailed, match="does not fit"):
        helper.submit(np.zeros((33, 784), np.float32), np.zeros(33, np.int64), None, 66, 1.0)
    helper.close()


def test_closing_stops_the_helper_and_leaves_no_shared_file() -> None:
    rng = np.random.default_rng(0)
    model = MLP([784, 32, 10]).init(rng)
    helper = ShardHelper(model, get_loss("cross_entropy"), 32)
    path = helper.path
    assert path is not None and path.exists()
    helper.start()
    _wait_until(helper.ready, "the helper starting")
    assert not path.exists()  # unlinked as soon as both processes had it mapped
    proc, params = helper.proc, model.flat.copy()
    helper.close()
    assert proc.poll() is not None and proc.pid not in threads._children()
    assert np.array_equal(model.flat, params) and model.forward(np.zeros((1, 784), np.float32)).shape == (1, 10)


def test_a_failed_setup_leaves_no_shared_file(monkeypatch) -> None:
    created: list[str] = []
    mkstemp = shard_process.tempfile.mkstemp

    def recording(*args: object, **kwargs: object) -> tuple[int, str]:
        fd, name = mkstemp(*args, **kwargs)
        created.append(name)
        return fd, name

    def no_space(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shard_process.tempfile, "mkstemp", recording)
    monkeypatch.setattr(shard_process.os, "posix_fallocate", no_space, raising=False)
    with pytest.raises(OSError, match="No space"):
        ShardHelper(MLP([784, 32, 10]).init(np.random.default_rng(0)), get_loss("cross_entropy"), 32)
    assert created and not Path(created[0]).exists()


def test_the_helper_ends_when_the_training_process_dies(tmp_path) -> None:
    script = """
import numpy as np, os, sys, time
from mlpcli.nn.losses import get_loss
from mlpcli.nn.mlp import MLP
from mlpcli.training.shard_process import ShardHelper
helper = ShardHelper(MLP([784, 16, 10]).init(np.random.default_rng(0)), get_loss("cross_entropy"), 32)
helper.start()
while not helper.ready():
    time.sleep(0.01)
print(helper.proc.pid, flush=True)
os._exit(0)  # as if killed: nothing stops the helper
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    pid = int(out.stdout.split()[0])
    _wait_until(lambda: not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), "the orphaned helper ending")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_the_helpers_cpu_time_counts_as_the_training_process() -> None:
    """A process this one started (the shard helper is one) computes for it: its CPU time is this process's
    for train.threads: auto, while it runs and after it ended, with no global list of helpers to keep."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nprint(1, flush=True)\n"
    burn += "input()"
    before = threads._own_seconds()
    child = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        child.stdout.readline()  # it has used 0.3 s of CPU
        assert child.pid in threads._children()
        running = threads._own_seconds()
        assert running - before >= 0.25
    finally:
        child.communicate("\n")
    assert child.pid not in threads._children() and threads._own_seconds() >= running - 0.01  # no drop once reaped
    assert _process_seconds(2**22 + 12345) == 0.0  # no such process


def test_a_whole_run_with_the_helper_gives_the_one_thread_weights(tmp_path, monkeypatch) -> None:
    from mlpcli.config import load_config
    from mlpcli.files import checkpoint
    from mlpcli.training import service as training

    monkeypatch.setattr(shards, "HELPER_AFTER_BATCHES", 1)  # started on the first two-worker batch
    start, result, used = ShardHelper.start, ShardHelper.result, []

    def start_and_wait(self: ShardHelper) -> None:
        start(self)
        _wait_until(self.ready, "the helper starting")

    def counted(self: ShardHelper) -> tuple[float, int]:
        used.append(1)
        return result(self)

    monkeypatch.setattr(ShardHelper, "start", start_and_wait)
    monkeypatch.setattr(ShardHelper, "result", counted)
    base = ["name=t", "data.dataset=mnist-sample", "data.validation=500", "model.hidden=[64, 32]", "train.epochs=6"]
    weights = []
    for count in (1, 2):
        cfg = load_config(None, [*base, f"train.threads={count}"])
        training.run(training.prepare(cfg), tmp_path / f"t{count}")
        weights.append(checkpoint.load(tmp_path / f"t{count}" / "last.npz").params)
    assert len(used) == 6 * (4500 // 128)  # every two-shard batch went to the helper (the last, 20 rows, is one)
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_augmenting_leaves_a_core_to_the_batch_worker_unless_the_network_is_large() -> None:
    from mlpcli.training.shards import core_for_batches

    assert core_for_batches([784, 256, 128, 10], reproducible=True)  # the worker is the bottleneck
    assert not core_for_batches([784, 800, 800, 10], reproducible=True)  # the second shard pays more
    assert core_for_batches([784, 800, 800, 10], reproducible=False)  # BLAS's threads: no helper


def test_a_helper_that_imported_another_copy_of_mlpcli_exits_at_once(tmp_path) -> None:
    with pytest.raises(SystemExit) as ended:
        shard_process.main([str(tmp_path / "mlpcli"), str(tmp_path / "no-such-file"), "{}"])
    assert ended.value.code == 3  # before it touches any shared memory; training then uses a thread
