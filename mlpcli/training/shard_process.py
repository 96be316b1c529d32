"""The second shard of every batch, computed by a helper process that shares the parameters' memory.

Two threads of one Python process computing a batch's two halves (shards.py) pay for it twice: the
GIL, which each of their forty-odd small numpy calls has to win back from the other, and the wake-up
of an idle core for every batch. A helper process has its own interpreter, and it waits for the next
batch by watching a counter in shared memory instead of sleeping, so neither cost is paid. The
arithmetic is the same calls on the same shapes as in the training process (shards.shard_gradients,
one BLAS thread a call), so the weights come out the same bits wherever a shard was computed: when
the helper is not ready yet, or fails, the training process computes the shard itself.

The shared memory is one file in /dev/shm (or the temporary folder), unlinked as soon as the helper
has mapped it: header counters, the parameters, the helper's gradients, the shard's inputs, labels
and dropout masks. The counters are plain int64 stores, whose order x86-64 keeps across cores; so
the helper is used only there (elsewhere the threads of shards.py do the work).
"""

from __future__ import annotations

import json
import mmap
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.nn.losses import get_loss
from mlpcli.nn.mlp import MLP, Masks, count_parameters

SPIN_SECONDS = 0.002  # after a batch the helper watches the counter this long before it starts to sleep
DOZE_SECONDS = 0.0002  # then it looks every this often, for up to IDLE_SECONDS
IDLE_SECONDS = 1.0
SLEEP_SECONDS = 0.005  # and then every this often (between epochs, during validation)
STALL_SECONDS = 60.0  # a helper alive but silent this long (stopped, frozen) is given up for a thread
YIELD_AFTER_SPINS = 20_000  # the training process waits this many looks (a few ms) before it yields its core
ALIGN = 64

# header slots (int64)
SEQ, DONE, ROWS, READY, STATUS, RIGHT, PARENT, BATCH = range(8)
STOP = -1


def supported() -> bool:
    """Whether this machine can run the helper: x86-64 (whose stores other cores see in order) with mmap."""
    return platform.machine().lower() in {"x86_64", "amd64"} and hasattr(mmap, "MAP_SHARED")


class HelperFailed(RuntimeError):
    """The helper process died or reported an error; the caller computes the shard itself."""


def _layout(spec: dict[str, Any]) -> tuple[dict[str, tuple[int, tuple[int, ...], str]], int]:
    """Name -> (byte offset, shape, dtype) of every array in the shared file, and its total size."""
    sizes, rows, dtype = spec["sizes"], spec["max_rows"], spec["dtype"]
    params = count_parameters(sizes)[2]
    arrays: list[tuple[str, tuple[int, ...], str]] = [
        ("header", (8,), "int64"),
        ("floats", (2,), "float64"),  # [0] the gradients' scale, [1] the shard's loss
        ("flat", (params,), dtype),
        ("grad_flat", (params,), dtype),
        ("x", (rows, sizes[0]), dtype),
        ("y", (rows,), "int64"),
        ("error", (1024,), "uint8"),
    ]
    if spec["input_dropout"] > 0:
        arrays.append(("mask0", (rows, sizes[0]), dtype))
    if spec["dropout"] > 0:
        arrays += [(f"mask{l}", (rows, sizes[l]), dtype) for l in range(1, len(sizes) - 1)]
    layout, offset = {}, 0
    for name, shape, dt in arrays:
        layout[name] = (offset, shape, dt)
        size = int(np.prod(shape)) * np.dtype(dt).itemsize
        offset += -(-size // ALIGN) * ALIGN
    return layout, offset


def _views(buf: mmap.mmap, layout: dict[str, tuple[int, tuple[int, ...], str]]) -> dict[str, np.ndarray]:
    """Arrays over the mapping; each holds it (np.frombuffer), so it cannot be unmapped under a live view."""
    return {
        name: np.frombuffer(buf, np.dtype(dt), int(np.prod(shape)), offset).reshape(shape)
        for name, (offset, shape, dt) in layout.items()
    }


def _model(spec: dict[str, Any]) -> MLP:
    return MLP(
        spec["sizes"],
        spec["activation"],
        spec["output"],
        dropout=spec["dropout"],
        input_dropout=spec["input_dropout"],
        dtype=np.dtype(spec["dtype"]),
        **spec["activation_params"],
    )


class ShardHelper:
    """A helper process computing second shards of batches of up to max_rows rows for `model`.

    start() launches it and returns at once; ready() says when it can take work. submit() hands it a
    shard, result() waits for the shard's (loss, right) with its gradients in self.grad_flat. The
    model's parameters move into the shared memory (model.share); close() moves them back.
    """

    def __init__(self, model: MLP, loss: Any, max_rows: int) -> None:
        self.spec = {
            "sizes": model.layer_sizes,
            "activation": model.activation,
            "output": model.output,
            "dropout": model.dropout,
            "input_dropout": model.input_dropout,
            "dtype": model.dtype.name,
            "activation_params": model.activation_params,
            "loss": loss.name,
            "smoothing": float(getattr(loss, "smoothing", 0.0)),
            "max_rows": int(max_rows),
        }
        self.model = model
        self.proc: subprocess.Popen | None = None
        self._buf: mmap.mmap | None = None
        layout, size = _layout(self.spec)
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, name = tempfile.mkstemp(prefix="mlpcli-shard-", dir=folder)
        self.path: Path | None = Path(name)
        try:
            try:
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(fd, 0, size)  # a full /dev/shm is an OSError now, not a SIGBUS later
                else:
                    os.ftruncate(fd, size)
                self._buf = mmap.mmap(fd, size)
            finally:
                os.close(fd)
        except BaseException:
            self._unlink()
            raise
        self.arrays = _views(self._buf, layout)
        self.header, self.floats = self.arrays["header"], self.arrays["floats"]
        self.grad_flat = self.arrays["grad_flat"]
        self.header[PARENT] = os.getpid()
        self._seq = 0
        self.attach()

    def attach(self) -> None:
        """Move the model's parameters into the shared memory (again after init or set_params gave it new ones)."""
        if self.model.flat is not self.arrays["flat"]:
            self.arrays["flat"][...] = self.model.flat
            self.model.share(self.arrays["flat"])

    def start(self) -> None:
        """Launch the helper; it maps the shared file and then raises the ready flag. Raises OSError when no
        process can be started here."""
        if not sys.executable:
            raise OSError("no Python executable to start the shard helper with")
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        package = str(Path(__file__).resolve().parents[1])  # .../mlpcli: the helper must run this very copy
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, package, str(self.path), json.dumps(self.spec)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )

    def exited(self) -> bool:
        """Whether the helper has ended (or never started)."""
        return self.proc is None or self.proc.poll() is not None

    def ready(self) -> bool:
        """Whether the helper has started and can take a shard; unlinks the shared file once it has."""
        if self.exited():
            return False
        if not self.header[READY]:
            return False
        self._unlink()
        return True

    def submit(self, x: np.ndarray, y: np.ndarray, masks: Masks | None, n: int, scale: float) -> None:
        """Hand the helper a shard: inputs x (rows, inputs), int labels y (rows,), its dropout masks, the
        batch's row count n and the gradients' scale. Raises HelperFailed when it cannot take it."""
        rows = x.shape[0]
        if self._buf is None or rows > self.spec["max_rows"] or y.ndim != 1:
            raise HelperFailed("this shard does not fit the helper's buffers")
        self.attach()
        a = self.arrays
        a["x"][:rows] = x
        a["y"][:rows] = y
        for layer, mask in (masks or {}).items():
            a[f"mask{layer}"][:rows] = mask
        self.header[ROWS] = rows
        self.header[BATCH] = n
        self.floats[0] = scale
        self._seq += 1
        self.header[SEQ] = self._seq  # last: the helper starts when it sees this

    def result(self) -> tuple[float, int]:
        """Wait for the submitted shard; (its loss times its share of the batch, rows right).
        Raises HelperFailed when the helper died, reported an error, or made no progress for STALL_SECONDS."""
        header, seq, spins, since = self.header, self._seq, 0, time.monotonic()
        while header[DONE] != seq:
            spins += 1
            if spins & 0x3F == 0:  # let this process's other threads (the batch worker) have the GIL now and then
                time.sleep(0)
            if spins > YIELD_AFTER_SPINS:  # the helper is late: perhaps it waits for this core
                os.sched_yield() if hasattr(os, "sched_yield") else time.sleep(0)
            if spins & 0x3FFF == 0:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise HelperFailed(f"the shard helper exited with code {code}")
                if time.monotonic() - since > STALL_SECONDS:  # alive but stopped (SIGSTOP, a frozen cgroup)
                    raise HelperFailed(f"the shard helper made no progress in {STALL_SECONDS:g} s")
        if header[STATUS]:
            text = bytes(self.arrays["error"]).rstrip(b"\0").decode("utf-8", "replace")
            raise HelperFailed(f"the shard helper failed: {text}")
        return float(self.floats[1]), int(header[RIGHT])

    def _unlink(self) -> None:
        if self.path is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
            self.path = None

    def close(self) -> None:
        """Stop the helper (by its process id), give the model private parameters back, free the memory.
        Closing again does nothing."""
        if self.proc is not None:
            self.header[SEQ] = STOP
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        self._unlink()
        if self._buf is None:
            return
        if self.model.flat is self.arrays["flat"]:
            self.model.share(self.arrays["flat"].copy())
        self.arrays, self.header, self.floats, self.grad_flat = {}, np.zeros(8, np.int64), np.zeros(2), np.zeros(0)
        try:
            self._buf.close()
        except BufferError:  # someone still holds a view: the mapping ends when the last view does
            pass
        self._buf = None


def _serve(path: str, spec: dict[str, Any]) -> None:
    """The helper's loop: wait for a shard, compute it into the shared gradients, say it is done."""
    from mlpcli.training.shard import shard_gradients

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the training process's to handle; it stops us
    layout, size = _layout(spec)
    with open(path, "r+b") as fh:
        buf = mmap.mmap(fh.fileno(), size)
    try:
        os.unlink(path)  # mapped now: nothing is left behind, whichever process ends first
    except OSError:
        pass
    a = _views(buf, layout)
    header, floats = a["header"], a["floats"]
    model = _model(spec).init(np.random.default_rng(0))  # its values are replaced by the shared ones
    model.share(a["flat"], a["grad_flat"])
    loss_fn = get_loss(spec["loss"], spec["smoothing"])
    mask_layers = [int(k[4:]) for k in a if k.startswith("mask")]
    parent, seen = int(header[PARENT]), 0
    header[READY] = 1
    while True:
        waited = time.perf_counter()
        while header[SEQ] == seen:
            idle = time.perf_counter() - waited
            if idle > SPIN_SECONDS:
                time.sleep(DOZE_SECONDS if idle < IDLE_SECONDS else SLEEP_SECONDS)
                if os.getppid() != parent:
                    return
        seq = int(header[SEQ])
        if seq == STOP:
            return
        try:
            rows, n = int(header[ROWS]), int(header[BATCH])
            masks = {l: a[f"mask{l}"][:rows] for l in mask_layers} or None
            loss, right = shard_gradients(model, loss_fn, a["x"][:rows], a["y"][:rows], masks, n, float(floats[0]))
            floats[1] = loss
            header[RIGHT] = right
        except Exception as exc:  # reported to the training process, which then computes the shard itself
            text = f"{type(exc).__name__}: {exc}".encode()[:1023]
            a["error"][: len(text)] = np.frombuffer(text, np.uint8)
            header[STATUS] = 1
        header[DONE] = seq
        seen = seq


def main(argv: list[str]) -> None:
    """The helper's entry point: argv = [the training process's mlpcli folder, the shared file, the spec]. It
    exits at once (and the training process uses a thread) when it imported another copy of mlpcli."""
    if Path(__file__).resolve().parents[1] != Path(argv[0]):
        sys.exit(3)
    _serve(argv[1], json.loads(argv[2]))


# Run with `python -c`: imports the training process's own copy of mlpcli from its folder, leaving sys.path alone.
_BOOT = (
    "import sys, importlib.util as u; p = sys.argv[1]; "
    "s = u.spec_from_file_location('mlpcli', p + '/__init__.py', submodule_search_locations=[p]); "
    "m = u.module_from_spec(s); sys.modules['mlpcli'] = m; s.loader.exec_module(m); "
    "from mlpcli.training.shard_process import main; main(sys.argv[1:])"
)
