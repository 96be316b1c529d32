"""mlpcli's speed and memory, measured side by side with PyTorch and numpy's own sgemm.

    python scripts/bench.py [--data-dir ../shared/data/mnist] [--rounds 3] [--out bench-results/bench.json]

The machine this runs on is shared and drifts between speed regimes, so every comparison
is a ratio of two measurements taken next to each other: every mlpcli epoch is followed at
once by a PyTorch epoch, for --epochs epochs in each of --rounds rounds.
PyTorch and JAX are optional, for this benchmark only, never a runtime dependency of mlpcli
(`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu` and `pip install "jax[cpu]"`);
without one, its column is skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.config import load_config
from mlpcli.data.batches import BatchStream, Split
from mlpcli.data.load import Dataset, load_dataset
from mlpcli.data.prepare import fit_normalizer
from mlpcli.events import EpochEnd
from mlpcli.inference.metrics import evaluate_arrays
from mlpcli.nn import MLP, make_optimizer
from mlpcli.training.loop import LoopSettings, LoopState, Stepper, averaged, fit
from mlpcli.training.threads import ThreadGovernor, usable_cores

REPO = Path(__file__).resolve().parent.parent
SIZES = [784, 256, 128, 10]
BATCH = 128
LR, MOMENTUM = 0.05, 0.9
SETTLE_S = 0.5  # quiet seconds before each timed epoch: BLAS, OpenMP and XLA threads spin on after their work


def gemm_flops_per_epoch(n: int, sizes: list[int] = SIZES, batch: int = BATCH) -> float:
    """Exact matrix-product FLOPs of one epoch: forward, weight gradients, and deltas below layer 1."""
    flops = 0.0
    for start in range(0, n, batch):
        m = min(batch, n - start)
        for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            products = 2 if l == 0 else 3  # no delta is propagated into the input layer
            flops += products * 2.0 * m * fan_in * fan_out
    return flops


def sgemm_rate(size: int = 2048, repeats: int = 5) -> float:
    """numpy float32 matrix product throughput in FLOP/s (median of repeats)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t)
    return 2.0 * size**3 / statistics.median(times)


def products_seconds(n: int, threads: int, sizes: list[int] = SIZES, batch: int = BATCH) -> float:
    """Seconds of one epoch's matrix products alone, at their own shapes: per batch the forward products (3),
    the weight gradients (3) and the input gradients below the top layer (2), numpy float32, with `threads`
    BLAS threads. Nothing else a training step does: the floor for this network on this machine."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    acts = [rng.random((batch, s), dtype=np.float32) for s in sizes]
    weights = [rng.random((a, b), dtype=np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    grads = [np.empty_like(w) for w in weights]
    outs = [np.empty((batch, s), np.float32) for s in sizes]
    with threadpool_limits(limits=threads, user_api="blas"):
        start = time.perf_counter()
        for _ in range(n // batch):
            for l, w in enumerate(weights):
                np.matmul(acts[l], w, out=outs[l + 1])
            for l in range(len(weights) - 1, -1, -1):
                np.matmul(acts[l].T, acts[l + 1], out=grads[l])
                if l > 0:
                    np.matmul(acts[l + 1], weights[l].T, out=outs[l])
        return time.perf_counter() - start


def torch_trainer(data: Dataset, threads: int, seed: int = 0, sizes: list[int] = SIZES, batch: int = BATCH) -> Any:
    """A function that trains the same network with the same loop in PyTorch for one epoch, returning its seconds."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    norm = fit_normalizer("standardize", data.train_x)
    x = torch.from_numpy(norm.apply(data.train_x))  # normalized once: PyTorch's usual, fastest set-up
    y = torch.from_numpy(data.train_y.astype(np.int64))
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch() -> float:
        t = time.perf_counter()
        perm = torch.randperm(x.shape[0])
        for start in range(0, x.shape[0], batch):
            idx = perm[start : start + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        return time.perf_counter() - t

    return epoch


def jax_trainer(data: Dataset, seed: int = 0, sizes: list[int] = SIZES, batch: int = BATCH) -> Any:
    """A function that trains the same network in JAX for one epoch with a jit-compiled step, returning its seconds.

    Batches are gathered in numpy and handed to the compiled step one by one, as PyTorch's loop does;
    XLA chooses its own threads (all cores). The first call compiles: pair it with the warm-up epoch.
    """
    import jax
    import jax.numpy as jnp

    norm = fit_normalizer("standardize", data.train_x)
    x, y = norm.apply(data.train_x), data.train_y.astype(np.int32)
    rng = np.random.default_rng(seed)
    params = [
        (jnp.asarray(rng.normal(0, np.sqrt(2 / a), (a, b)).astype(np.float32)), jnp.zeros(b, jnp.float32))
        for a, b in zip(sizes[:-1], sizes[1:])
    ]
    velocity = jax.tree_util.tree_map(jnp.zeros_like, params)

    def loss(ps: Any, xb: Any, yb: Any) -> Any:
        h = xb
        for i, (w, b) in enumerate(ps):
            h = h @ w + b
            if i < len(ps) - 1:
                h = jax.nn.relu(h)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), yb[:, None], axis=1))

    @jax.jit
    def step(ps: Any, vs: Any, xb: Any, yb: Any) -> Any:
        grads = jax.grad(loss)(ps, xb, yb)
        vs = jax.tree_util.tree_map(lambda v, g: MOMENTUM * v + g, vs, grads)  # PyTorch's momentum SGD
        ps = jax.tree_util.tree_map(lambda p, v: p - LR * v, ps, vs)
        return ps, vs

    state = [params, velocity]

    def epoch() -> float:
        t = time.perf_counter()
        perm = rng.permutation(x.shape[0])
        ps, vs = state
        for start in range(0, x.shape[0], batch):
            idx = perm[start : start + batch]
            ps, vs = step(ps, vs, x[idx], y[idx])
        jax.block_until_ready(ps)
        state[:] = [ps, vs]
        return time.perf_counter() - t

    return epoch


def plain_products_trainer(data: Dataset, cfg: Any, threads: int, seed: int = 0) -> Any:
    """A function that trains the same network one epoch with `train.reproducible: false` (one BLAS call a
    product, BLAS's `threads` threads), returning its seconds: what the fixed chunks cost, side by side."""
    from threadpoolctl import threadpool_limits

    normalizer = fit_normalizer("standardize", data.train_x)
    model = MLP(SIZES, "relu", "softmax", reduction_chunk=None).init(np.random.default_rng(seed), "he")
    stepper = Stepper(
        model,
        make_optimizer("momentum", LR, momentum=MOMENTUM),
        BatchStream(Split(data.train_x, data.train_y), BATCH, normalizer),
        dataclasses.replace(LoopSettings.from_config(cfg, None), epochs=10**6),
        LoopState(np.random.default_rng(seed)),
    )

    def epoch() -> float:
        with threadpool_limits(limits=threads, user_api="blas"):
            row = None
            while row is None:
                row = stepper.step()
        return float(row["seconds"])

    return epoch


SHAPES = [([784, 256, 128, 10], 128), ([784, 100, 10], 32), ([784, 1024, 1024, 10], 256)]


def mlpcli_trainer(data: Dataset, sizes: list[int], batch: int, threads: int, seed: int = 0) -> Any:
    """A function that trains one epoch as `mlpcli train` does (the reproducible default: products cut into
    fixed chunks, `threads` BLAS threads), momentum SGD as the others, returning its seconds."""
    cfg = load_config(
        None,
        [
            "data.validation=0",
            f"model.hidden={sizes[1:-1]}",
            "optimizer.name=momentum",
            f"optimizer.lr={LR}",
            f"optimizer.momentum={MOMENTUM}",
            "schedule.name=constant",
            f"train.batch_size={batch}",
            f"seed={seed}",
        ],
    )
    normalizer = fit_normalizer("standardize", data.train_x)
    model = MLP(sizes, "relu", "softmax").init(np.random.default_rng(seed), "he")
    settings = dataclasses.replace(LoopSettings.from_config(cfg, None), epochs=10**6)
    optimizer = make_optimizer("momentum", LR, momentum=MOMENTUM, fold=True, decay_mask=model.decay_mask())
    batches = BatchStream(Split(data.train_x, data.train_y), batch, normalizer)
    governor = ThreadGovernor(threads)
    stepper = Stepper(model, optimizer, batches, settings, LoopState(np.random.default_rng(seed)), None)

    def epoch() -> float:
        with governor:
            row = None
            while row is None:
                row = stepper.step()
        return float(row["seconds"])

    return epoch


def shape_ratios(data: Dataset, threads: int, epochs: int, with_torch: bool, with_jax: bool) -> list[dict[str, Any]]:
    """For each of SHAPES, mlpcli's epoch against PyTorch's, JAX's and the epoch's own matrix products, each
    mlpcli epoch followed at once by the others (the first epoch is warm-up): the medians of the ratios."""
    out = []
    for sizes, batch in SHAPES:
        ours = mlpcli_trainer(data, sizes, batch, threads)
        theirs = torch_trainer(data, threads, 0, sizes, batch) if with_torch else None
        jaxs = jax_trainer(data, 0, sizes, batch) if with_jax else None
        rows = []
        for _ in range(epochs + 1):
            row = {"mlpcli_s": ours()}
            time.sleep(SETTLE_S)
            row["torch_s"] = theirs() if theirs else None
            time.sleep(SETTLE_S)
            row["jax_s"] = jaxs() if jaxs else None
            time.sleep(SETTLE_S)
            row["products_s"] = products_seconds(len(data.train_y), threads, sizes, batch)
            time.sleep(SETTLE_S)
            rows.append(row)
        rows = rows[1:]

        def ratio(key: str, rows: list[dict[str, Any]] = rows) -> float | None:
            if rows[0][key] is None:
                return None
            return statistics.median(r["mlpcli_s"] / r[key] for r in rows)

        shape = {
            "network": "-".join(map(str, sizes)),
            "batch": batch,
            "mlpcli_epoch_s": statistics.median(r["mlpcli_s"] for r in rows),
            "vs_products": ratio("products_s"),
            "vs_torch": ratio("torch_s"),
            "vs_jax": ratio("jax_s"),
        }
        out.append(shape)
        print(
            f"{shape['network']} batch {batch}: mlpcli {shape['mlpcli_epoch_s']:.3f} s/epoch, "
            + ", ".join(f"{k} {v:.2f}x" for k, v in shape.items() if k.startswith("vs_") and v is not None),
            file=sys.stderr,
        )
    return out


STAGES = ("batch", "forward", "loss", "backward", "optimizer")


def breakdown(data: Dataset, threads: int, epochs: int) -> list[dict[str, Any]]:
    """Where an epoch's time goes, for each of SHAPES: a Stepper's step taken apart (the next batch, the forward
    pass, the loss and its delta, the backward pass, the optimizer's update) and each stage timed on its own,
    beside the epoch's matrix products alone and a whole Stepper epoch (whose excess over the stages is the
    rest of the step: schedule, events, bookkeeping). Seconds an epoch, medians of `epochs` after a warm-up."""
    from mlpcli.nn.losses import get_loss

    out = []
    for sizes, batch in SHAPES:
        whole = mlpcli_trainer(data, sizes, batch, threads)
        model = MLP(sizes, "relu", "softmax").init(np.random.default_rng(0), "he")
        optimizer = make_optimizer("momentum", LR, momentum=MOMENTUM, fold=True, decay_mask=model.decay_mask())
        loss_fn = get_loss("cross_entropy")
        stream = BatchStream(Split(data.train_x, data.train_y), batch, fit_normalizer("standardize", data.train_x))
        rng = np.random.default_rng(0)
        rows = []
        for _ in range(epochs + 1):
            spent = dict.fromkeys(STAGES, 0.0)
            with ThreadGovernor(threads):
                batches = iter(stream.epoch(rng.permutation(len(data.train_y))))
                while True:
                    t0 = time.perf_counter()
                    try:
                        xb, yb = next(batches)
                    except StopIteration:
                        break
                    t1 = time.perf_counter()
                    z = model.forward_train(xb)
                    t2 = time.perf_counter()
                    _, delta = loss_fn(z, yb, model.output_activation)
                    delta *= delta.dtype.type(optimizer.begin_step(LR))
                    t3 = time.perf_counter()
                    model.backward(delta)
                    t4 = time.perf_counter()
                    optimizer.step(model.flat, model.grad_flat)
                    t5 = time.perf_counter()
                    for stage, a, b in zip(STAGES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                        spent[stage] += b - a
            time.sleep(SETTLE_S)
            spent["epoch"] = whole()
            time.sleep(SETTLE_S)
            spent["products"] = products_seconds(len(data.train_y), threads, sizes, batch)
            time.sleep(SETTLE_S)
            rows.append(spent)
        rows = rows[1:]
        row: dict[str, Any] = {"network": "-".join(map(str, sizes)), "batch": batch}
        row.update({k: statistics.median(r[k] for r in rows) for k in rows[0]})
        row["rest"] = row["epoch"] - sum(row[k] for k in STAGES)
        out.append(row)
        print(
            f"{row['network']} batch {batch}: epoch {row['epoch']:.3f} s, products {row['products']:.3f} s; "
            + ", ".join(f"{k} {row[k]:.3f}" for k in (*STAGES, "rest")),
            file=sys.stderr,
        )
    return out


def scaling(data: Dataset, epochs: int, sizes: list[int] = SIZES, batch: int = BATCH) -> list[dict[str, Any]]:
    """The epoch time of `mlpcli train`'s reproducible default with 1, 2, 4, 8, ... workers up to this machine's
    cores (and the cores themselves), the same weights for every count; median of `epochs` after a warm-up."""
    counts = sorted({c for c in (2**k for k in range(8)) if c <= usable_cores()} | {usable_cores()})
    out = []
    for count in counts:
        epoch = mlpcli_trainer(data, sizes, batch, count)
        times = [epoch() for _ in range(epochs + 1)][1:]
        out.append({"workers": count, "epoch_s": statistics.median(times)})
        base = out[0]["epoch_s"]
        print(
            f"workers {count:>3}: {out[-1]['epoch_s']:.3f} s/epoch ({base / out[-1]['epoch_s']:.2f}x one)",
            file=sys.stderr,
        )
    return out


def paired_epochs(
    data: Dataset, epochs: int, threads: int, with_torch: bool, with_jax: bool = False, seed: int = 0
) -> list[dict[str, Any]]:
    """mlpcli's own training loop (fit) on the full training set, each epoch followed at once by a PyTorch epoch.

    Pairing epoch by epoch puts both under the same machine conditions, so their ratio means something;
    numpy's sgemm rate is measured right after each pair too, for mlpcli's share of it.
    """
    cfg = load_config(
        None,
        [
            "data.validation=0",
            f"model.hidden={SIZES[1:-1]}",
            "optimizer.name=momentum",
            f"optimizer.lr={LR}",
            f"optimizer.momentum={MOMENTUM}",
            "schedule.name=constant",
            f"train.epochs={epochs}",
            f"train.batch_size={BATCH}",
            f"seed={seed}",
        ],
    )
    normalizer = fit_normalizer("standardize", data.train_x)
    model = MLP(SIZES, "relu", "softmax").init(np.random.default_rng(seed), "he")
    optimizer = make_optimizer("momentum", LR, momentum=MOMENTUM)
    torch_epoch = torch_trainer(data, threads, seed) if with_torch else None
    jax_epoch = jax_trainer(data, seed) if with_jax else None
    plain_products_epoch = plain_products_trainer(data, cfg, threads, seed)
    pairs: list[dict[str, Any]] = []

    def on_event(event: object) -> None:
        if isinstance(event, EpochEnd):
            time.sleep(SETTLE_S)
            theirs = torch_epoch() if torch_epoch else None
            time.sleep(SETTLE_S)
            jaxs = jax_epoch() if jax_epoch else None
            time.sleep(SETTLE_S)
            plain_products = plain_products_epoch()
            from threadpoolctl import threadpool_limits

            products = products_seconds(len(data.train_y), threads)
            with threadpool_limits(limits=threads, user_api="blas"):
                rate = sgemm_rate(repeats=3)
            time.sleep(SETTLE_S)  # every timed epoch starts after the others' spinning threads have settled
            pairs.append(
                {
                    "mlpcli_s": event.metrics["seconds"],
                    "torch_s": theirs,
                    "jax_s": jaxs,
                    "plain_products_s": plain_products,
                    "products_s": products,
                    "sgemm_flops": rate,
                }
            )

    batches = BatchStream(Split(data.train_x, data.train_y), BATCH, normalizer)
    with ThreadGovernor(threads):  # as `mlpcli train` runs: `threads` BLAS threads
        fit(
            model,
            optimizer,
            batches,
            LoopSettings.from_config(cfg, None),
            LoopState(np.random.default_rng(seed)),
            [on_event],
        )
    return pairs


def fused_ratio(data: Dataset, threads: int, epochs: int = 7) -> dict[str, Any]:
    """Epoch time with the fused step (train.fused) over nn/'s plain step: fit() on the same network and
    batch order, one epoch of each in turn; the first pair is warm-up."""
    from threadpoolctl import threadpool_limits

    from mlpcli.config import ScheduleConfig

    normalizer = fit_normalizer("standardize", data.train_x)
    sides = {}
    for name in ("plain", "fused"):
        model = MLP(SIZES, "relu", "softmax").init(np.random.default_rng(0), "he")
        stream = BatchStream(Split(data.train_x, data.train_y), BATCH, normalizer)
        sides[name] = (
            model,
            make_optimizer("momentum", LR, momentum=MOMENTUM),
            stream,
            LoopState(np.random.default_rng(0)),
        )
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    with threadpool_limits(threads):
        for epoch in range(1, epochs + 1):
            for name, (model, optimizer, stream, state) in sides.items():
                settings = LoopSettings(
                    epochs=epoch,
                    schedule=ScheduleConfig(name="constant"),
                    monitor="train_loss",
                    fused=name == "fused",
                )
                t = time.perf_counter()
                fit(model, optimizer, stream, settings, state)
                seconds[name].append(time.perf_counter() - t)
    ratio = statistics.median(a / b for a, b in zip(seconds["fused"][1:], seconds["plain"][1:]))
    return {"seconds": seconds, "ratio": ratio, "threads": threads}


def normalization_fold(repeats: int = 2000) -> dict[str, float]:
    """Microseconds per 128-image batch: nn/'s normalization (two passes) against folding it into layer one.

    Folded, (x - m) / s @ W = ((x - m) @ W) / s: one pass over the pixels (x - m), then z and the first
    layer's delta scaled by 1/s, (128, 256) each, instead of the pixels a second time.
    """
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (BATCH, SIZES[0]), dtype=np.uint8)
    x = np.empty((BATCH, SIZES[0]), np.float32)
    z, delta = np.ones((BATCH, SIZES[1]), np.float32), np.ones((BATCH, SIZES[1]), np.float32)
    mean, scale = np.float32(33.3), np.float32(1 / 78.6)

    def plain() -> None:
        np.multiply(pixels, scale, out=x, dtype=np.float32)
        x.__iadd__(np.float32(-mean * scale))

    def folded() -> None:
        np.subtract(pixels, mean, out=x, dtype=np.float32)
        z.__imul__(scale)
        delta.__imul__(scale)

    out = {}
    for name, fn in (("plain_us", plain), ("folded_us", folded)):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(repeats):
                fn()
            times.append((time.perf_counter() - t) / repeats * 1e6)
        out[name] = statistics.median(times)
    return out


AUGMENT = [
    "augment.rotate=15",
    "augment.scale=0.15",
    "augment.shift=2",
    "augment.elastic_alpha=34",
    "augment.elastic_sigma=4",
]


def augmentation_ratio(data_dir: Path | None, epochs: int = 4) -> dict[str, Any]:
    """Augmented / plain epoch time of 784-256-128-10 at batch 128 on full MNIST, epochs alternating.

    Each side runs as `mlpcli train` would: its own batch stream and BLAS threads chosen by `auto`
    (the augmented side keeps a core for its batch worker).
    """
    from mlpcli.training import service as training
    from mlpcli.training.threads import ThreadGovernor

    base = ["data.validation=0", f"model.hidden={SIZES[1:-1]}", f"train.batch_size={BATCH}", "train.epochs=1"]
    base += [f"data.dir={data_dir}"] if data_dir else []
    sides = {
        name: training.prepare(load_config(REPO / "configs" / "mnist.yaml", base + extra))
        for name, extra in (("plain", []), ("augmented", AUGMENT))
    }
    optimizers = {name: make_optimizer("momentum", LR, momentum=MOMENTUM) for name in sides}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    threads: dict[str, int] = {}
    for epoch in range(1, epochs + 1):
        for name, p in sides.items():
            settings = LoopSettings.from_config(
                p.cfg.model_copy(update={"train": p.cfg.train.model_copy(update={"epochs": epoch})}), None
            )
            with ThreadGovernor(None, reserve=1 if p.batches.workers else 0) as governor:
                t = time.perf_counter()
                fit(p.model, optimizers[name], p.batches, settings, p.state, [governor])
                seconds[name].append(time.perf_counter() - t)
                threads[name] = governor.threads
    ratios = [a / b for a, b in zip(seconds["augmented"][1:], seconds["plain"][1:])]  # the first pair: warm-up
    return {
        "plain_s": seconds["plain"],
        "augmented_s": seconds["augmented"],
        "ratio": statistics.median(ratios),
        "threads": threads,
    }


def peak_rss_of(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of a command run to completion in a fresh process."""
    script = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        f"r = subprocess.run({cmd!r}, cwd={str(cwd)!r}, stdout=subprocess.DEVNULL); "
        "dt = time.perf_counter() - t; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, dt, r.returncode)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    if out[2] != "0":
        raise RuntimeError(f"{' '.join(cmd)} failed")
    return int(out[0]) / 1024.0, float(out[1])


def wall_time(cmd: list[str], cwd: Path, repeats: int = 5) -> float:
    """Median wall time of a whole process, start to exit."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_to_accuracy(
    data: Dataset, data_dir: Path | None, target: float = 0.98, config: str = "mnist.yaml"
) -> dict[str, Any]:
    """Train a config; the training seconds (evaluation excluded) until test accuracy first reaches target.

    With train.ema the weights evaluated are the average, the ones the run's checkpoint holds."""
    from mlpcli.training import service as training

    cfg = load_config(REPO / "configs" / config, [f"data.dir={data_dir}"] if data_dir else [])
    prepared = training.prepare(cfg)
    trained = 0.0
    reached: dict[str, Any] = {"config": config, "target": target, "seconds": None, "epoch": None, "curve": []}

    def on_event(event: object) -> None:
        nonlocal trained
        if isinstance(event, EpochEnd):
            trained += event.metrics["seconds"]
            with averaged(prepared.model, prepared.state.average) as model:  # what checkpoint.npz would hold
                acc = evaluate_arrays(model, prepared.normalizer, data.test_x, data.test_y, "cross_entropy").accuracy
            reached["curve"].append({"epoch": event.epoch, "seconds": trained, "test_accuracy": acc})
            if reached["seconds"] is None and acc >= target:
                reached["seconds"], reached["epoch"] = trained, event.epoch

    with tempfile.TemporaryDirectory() as tmp:
        training.run(prepared, Path(tmp), callbacks=[on_event])
    reached["final_test_accuracy"] = reached["curve"][-1]["test_accuracy"]
    return reached


def _epoch_times(proc: subprocess.Popen) -> tuple[list[float], Any]:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"a benchmark process failed: {err[-500:]}")
    doc = json.loads(out)
    return [r["seconds"] for r in doc["history"]], doc.get("threads")


def _mlpcli_process(data_dir: Path | None, cwd: Path, epochs: int) -> subprocess.Popen:
    config = str(REPO / "configs" / "mnist.yaml")
    args = [
        sys.executable,
        "-m",
        "mlpcli",
        "train",
        "-c",
        config,
        "--epochs",
        str(epochs),
        "--json",
        "--quiet",
        "--set",
        "data.validation=0",
    ]
    args += [f"--set=data.dir={data_dir.resolve()}"] if data_dir else []
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _torch_process(data_dir: Path | None, cwd: Path, epochs: int) -> subprocess.Popen:
    args = [sys.executable, __file__, "--torch-worker", str(epochs)]
    args += ["--data-dir", str(data_dir.resolve())] if data_dir else []
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def torch_worker(data_dir: Path | None, epochs: int) -> None:
    """Train PyTorch's version of the network for `epochs` epochs; print {"history": [{"seconds": ...}]}."""
    data = load_dataset("mnist", data_dir=data_dir)
    epoch = torch_trainer(data, usable_cores())
    print(json.dumps({"history": [{"seconds": epoch()} for _ in range(epochs)], "threads": usable_cores()}))


def contention(data_dir: Path | None, with_torch: bool, epochs: int = 4) -> dict[str, Any]:
    """Epoch time alone, beside a busy loop on one core, and two trainings at once; for mlpcli and PyTorch.

    Each is a whole process training configs/mnist.yaml's network; the median of its epochs after
    the first. The busy neighbour is a Python process spinning `while True: pass`.
    """
    makers = {"mlpcli": _mlpcli_process}
    if with_torch:
        makers["pytorch"] = _torch_process
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for tool, make in makers.items():
            quiet, threads = _epoch_times(make(data_dir, cwd, epochs))
            busy_loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                busy, busy_threads = _epoch_times(make(data_dir, cwd, epochs))
            finally:
                busy_loop.kill()
                busy_loop.wait()
            pair = [make(data_dir, cwd, epochs), make(data_dir, cwd, epochs)]
            both = [_epoch_times(p)[0] for p in pair]
            q = statistics.median(quiet[1:])
            b = statistics.median(busy[1:])
            p2 = max(statistics.median(t[1:]) for t in both)
            out[tool] = {
                "quiet_s": q,
                "busy_s": b,
                "pair_s": p2,
                "busy_ratio": b / q,
                "pair_ratio": p2 / q,
                "threads_quiet": threads,
                "threads_busy": busy_threads,
            }
    return out


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        print(f"{module} not installed: skipping its column", file=sys.stderr)
        return False
    return True


def blas_info() -> list[dict[str, Any]]:
    """BLAS libraries and thread counts, from threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "pip install threadpoolctl to report the BLAS"}]
    return [
        {k: v for k, v in info.items() if k in ("internal_api", "version", "num_threads", "architecture")}
        for info in threadpool_info()
    ]


def main() -> None:
    """Run every measurement, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = REPO.parent / "shared" / "data" / "mnist"
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_dir if default_dir.is_dir() else None,
        help="folder with the four MNIST files (default: ../shared/data/mnist, else the cache)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of paired epochs")
    parser.add_argument("--epochs", type=int, default=5, help="paired epochs per round (the first is warm-up)")
    parser.add_argument("--skip-accuracy", action="store_true", help="skip the time-to-98%% run")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "bench.json")
    parser.add_argument("--torch-worker", type=int, metavar="EPOCHS", help=argparse.SUPPRESS)
    parser.add_argument(
        "--scaling", action="store_true", help="only the epoch time for 1, 2, 4, ... workers up to the cores"
    )
    parser.add_argument(
        "--shapes", action="store_true", help="only the three shapes' ratios to PyTorch, JAX and their products"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="only where the three shapes' epochs go, stage by stage"
    )
    args = parser.parse_args()
    if args.torch_worker:
        torch_worker(args.data_dir, args.torch_worker)
        return
    data = load_dataset("mnist", data_dir=args.data_dir)
    if args.scaling or args.shapes or args.breakdown:
        part = {"machine": {"cores": usable_cores(), "cpu": platform.processor() or platform.machine()}}
        if args.scaling:
            part["scaling"] = scaling(data, args.epochs)
        if args.breakdown:
            part["breakdown"] = breakdown(data, usable_cores(), args.epochs)
        if args.shapes:
            part["shapes"] = shape_ratios(data, usable_cores(), args.epochs, _has("torch"), _has("jax"))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(part, indent=2))
        print(f"wrote {args.out}")
        return
    threads = usable_cores()
    flops = gemm_flops_per_epoch(len(data.train_y))
    try:
        import torch

        torch_version: str | None = torch.__version__
    except ImportError:
        torch_version = None
        print("PyTorch not installed (pip install torch==2.13.0): skipping its column", file=sys.stderr)
    try:
        import jax

        jax_version: str | None = jax.__version__
    except ImportError:
        jax_version = None
        print('JAX not installed (pip install "jax[cpu]"): skipping its column', file=sys.stderr)

    rounds = []
    for r in range(args.rounds):
        pairs = paired_epochs(data, args.epochs, threads, torch_version is not None, jax_version is not None, seed=r)
        pairs = pairs[1:]  # the first: warm-up (and JAX's compilation)
        ours = statistics.median(p["mlpcli_s"] for p in pairs)
        theirs = statistics.median(p["torch_s"] for p in pairs) if torch_version else None
        ratio = statistics.median(p["mlpcli_s"] / p["torch_s"] for p in pairs) if torch_version else None
        jax_s = statistics.median(p["jax_s"] for p in pairs) if jax_version else None
        chunk_cost = statistics.median(p["mlpcli_s"] / p["plain_products_s"] for p in pairs)
        vs_jax = statistics.median(p["mlpcli_s"] / p["jax_s"] for p in pairs) if jax_version else None
        rate = statistics.median(p["sgemm_flops"] for p in pairs)
        over_products = statistics.median(p["mlpcli_s"] / p["products_s"] for p in pairs)
        share = statistics.median(flops / p["mlpcli_s"] / p["sgemm_flops"] for p in pairs)
        row = {
            "round": r + 1,
            "sgemm_gflops": rate / 1e9,
            "mlpcli_epoch_s": ours,
            "torch_epoch_s": theirs,
            "ratio": ratio,
            "jax_epoch_s": jax_s,
            "vs_jax": vs_jax,
            "products_epoch_s": statistics.median(p["products_s"] for p in pairs),
            "plain_products_epoch_s": statistics.median(p["plain_products_s"] for p in pairs),
            "reproducible_cost": chunk_cost,
            "sgemm_share": share,
            "vs_products": over_products,
            "pairs": pairs,
        }
        rounds.append(row)
        print(
            f"round {r + 1}: mlpcli {ours:.3f} s/epoch, torch {theirs or float('nan'):.3f} s/epoch, "
            f"jax {jax_s or float('nan'):.3f} s/epoch, mlpcli/products {over_products:.2f}, "
            f"reproducible/not {chunk_cost:.2f}, "
            f"sgemm {rate / 1e9:.0f} GFLOP/s",
            file=sys.stderr,
        )

    normalizer = fit_normalizer("standardize", data.train_x)
    model = MLP(SIZES, "relu", "softmax").init(np.random.default_rng(0), "he")
    evaluate_arrays(model, normalizer, data.test_x, data.test_y, "cross_entropy")
    eval_times = []
    for _ in range(5):
        t = time.perf_counter()
        evaluate_arrays(model, normalizer, data.test_x, data.test_y, "cross_entropy")
        eval_times.append(time.perf_counter() - t)
    one = normalizer.apply(data.test_x[:1])
    latencies = []
    for _ in range(2000):
        t = time.perf_counter()
        model.forward(one)
        latencies.append(time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        mlpcli = [sys.executable, "-m", "mlpcli"]
        data_set = [f"--set=data.dir={args.data_dir}"] if args.data_dir else []
        rss, train_wall = peak_rss_of(
            [
                *mlpcli,
                "train",
                "--config",
                str(REPO / "configs" / "mnist.yaml"),
                "--epochs",
                "2",
                "--quiet",
                "--out",
                str(tmpdir / "run"),
                *data_set,
            ],
            tmpdir,
        )
        from PIL import Image

        Image.fromarray(255 - data.test_x[0].reshape(28, 28)).resize((112, 112)).save(tmpdir / "one.png")
        script = Path(sys.executable).parent / "mlpcli"
        entry = [str(script)] if script.exists() else mlpcli
        help_s = wall_time([*entry, "--help"], tmpdir)
        predict_s = wall_time(
            [*entry, "predict", "one.png", "-c", str(tmpdir / "run" / "checkpoint.npz"), "--no-show"], tmpdir
        )

    fused = fused_ratio(data, threads)
    norm_fold = normalization_fold()
    augmented = augmentation_ratio(args.data_dir)
    loads = contention(args.data_dir, torch_version is not None)
    accuracy = None if args.skip_accuracy else time_to_accuracy(data, args.data_dir)
    accuracy99 = None if args.skip_accuracy else time_to_accuracy(data, args.data_dir, 0.99, "mnist-augmented.yaml")
    ratios = [r["ratio"] for r in rounds if r["ratio"] is not None]
    result = {
        "machine": {
            "cores": threads,
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch_version,
            "jax": jax_version,
            "blas": blas_info(),
        },
        "network": "784-256-128-10 relu/softmax, batch 128, momentum SGD, float32, 60,000 images",
        "gemm_gflop_per_epoch": flops / 1e9,
        "rounds": rounds,
        "mlpcli_epoch_s": statistics.median(r["mlpcli_epoch_s"] for r in rounds),
        "torch_epoch_s": statistics.median(r["torch_epoch_s"] for r in rounds) if torch_version else None,
        "ratio_vs_torch": statistics.median(ratios) if ratios else None,
        "jax_epoch_s": statistics.median(r["jax_epoch_s"] for r in rounds) if jax_version else None,
        "ratio_vs_jax": statistics.median(r["vs_jax"] for r in rounds) if jax_version else None,
        "products_epoch_s": statistics.median(r["products_epoch_s"] for r in rounds),
        "plain_products_epoch_s": statistics.median(r["plain_products_epoch_s"] for r in rounds),
        "reproducible_cost": statistics.median(r["reproducible_cost"] for r in rounds),
        "sgemm_share": statistics.median(r["sgemm_share"] for r in rounds),
        "vs_products": statistics.median(r["vs_products"] for r in rounds),
        "peak_rss_mib_train": rss,
        "eval_images_per_s": len(data.test_y) / statistics.median(eval_times),
        "single_image_latency_ms": statistics.median(latencies) * 1000,
        "help_wall_s": help_s,
        "predict_one_wall_s": predict_s,
        "time_to_98": accuracy,
        "time_to_99": accuracy99,
        "augmentation": augmented,
        "fused_step": fused,
        "normalization_fold": norm_fold,
        "contention": loads,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    _table(result)
    print(f"\nwrote {args.out}")


def _table(r: dict[str, Any]) -> None:
    def fmt(v: Any, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    acc = r["time_to_98"] or {}
    lines = [
        ("epoch time, mlpcli (median)", fmt(r["mlpcli_epoch_s"], ".3f") + " s", ""),
        ("epoch time, PyTorch (median)", fmt(r["torch_epoch_s"], ".3f") + " s", ""),
        ("mlpcli / PyTorch (median of rounds)", fmt(r["ratio_vs_torch"], ".2f"), "target <= 0.75"),
        ("epoch time, JAX with a jit-compiled step (median)", fmt(r["jax_epoch_s"], ".3f") + " s", ""),
        ("mlpcli / JAX (median of rounds)", fmt(r["ratio_vs_jax"], ".2f"), "target <= 0.90"),
        ("epoch time, mlpcli with train.reproducible: false", fmt(r["plain_products_epoch_s"], ".3f") + " s", ""),
        ("reproducible / not (median of rounds)", fmt(r["reproducible_cost"], ".2f"), "target <= 1.05"),
        ("epoch time, its matrix products alone", fmt(r["products_epoch_s"], ".3f") + " s", ""),
        ("share of the run's sgemm rate", fmt(r["sgemm_share"], ".0%"), "target >= 70 %"),
        ("mlpcli / its matrix products alone", fmt(r["vs_products"], ".2f"), "target <= 1.25"),
        ("peak RSS, full-MNIST training", fmt(r["peak_rss_mib_train"], ".0f") + " MiB", "target <= 300 MiB"),
        ("evaluation throughput", fmt(r["eval_images_per_s"], ",.0f") + " images/s", ""),
        ("single-image forward latency", fmt(r["single_image_latency_ms"], ".3f") + " ms", ""),
        ("mlpcli --help, whole process", fmt(r["help_wall_s"], ".2f") + " s", "target <= 0.3 s"),
        ("mlpcli predict one.png, whole process", fmt(r["predict_one_wall_s"], ".2f") + " s", "target <= 0.8 s"),
        ("training time to 98.0 % test accuracy", fmt(acc.get("seconds"), ".1f") + " s", "target <= 3 s"),
        (
            "training time to 99.0 %, configs/mnist-augmented.yaml",
            fmt((r["time_to_99"] or {}).get("seconds"), ".1f") + " s",
            "target <= 20 s",
        ),
        (
            "augmented / plain epoch (rotate, scale, shift, elastic)",
            fmt(r["augmentation"]["ratio"], ".2f"),
            "target <= 1.3",
        ),
    ]
    lines.append(("epoch with the fused step / nn/'s plain step", fmt(r["fused_step"]["ratio"], ".3f"), ""))
    nf = r["normalization_fold"]
    lines.append(
        (
            "normalization per batch: plain / folded into layer one",
            f"{nf['plain_us']:.1f} / {nf['folded_us']:.1f} us",
            "",
        )
    )
    for tool, c in (r.get("contention") or {}).items():
        lines.append(
            (
                f"{tool}: epoch beside a busy core / quiet",
                fmt(c["busy_ratio"], ".2f"),
                "target <= 1.5" if tool == "mlpcli" else "",
            )
        )
        lines.append(
            (
                f"{tool}: epoch with two trainings at once / quiet",
                fmt(c["pair_ratio"], ".2f"),
                "target <= 2.5" if tool == "mlpcli" else "",
            )
        )
    m = (r.get("contention") or {}).get("mlpcli") or {}
    lines.append(
        (
            "mlpcli BLAS threads (auto): quiet / beside a busy core",
            f"{m.get('threads_quiet')} / {m.get('threads_busy')}",
            "",
        )
    )
    width = max(len(a) for a, _, _ in lines)
    for name, value, target in lines:
        print(f"{name:<{width}}  {value:>16}  {target}")


if __name__ == "__main__":
    main()
