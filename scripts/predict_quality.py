"""How well `mlpcli predict` reads MNIST test digits saved as pictures of several kinds.

    python scripts/predict_quality.py runs/mnist/checkpoint.npz [--n 10000] [--json out.json]

(a) the 28x28 digit as it is; (b) inverted to black ink on white and upscaled 4x;
(c) the same placed off-center on a larger white canvas; then drawn styles (thin and
thick pens, light on dark, transparent background). See tests/picture_cases.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mlpcli.data.load import load_dataset
from mlpcli.files import checkpoint
from mlpcli.inference.predictor import Predictor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the picture makers live with the tests
from picture_cases import CASES, STYLES, accuracy  # noqa: E402


def main() -> None:
    """Print the accuracy of each kind of picture (and write JSON if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--n", type=int, default=10000, help="how many test digits for cases a, b, c")
    parser.add_argument("--n-drawn", type=int, default=2000, help="how many for each drawn style (large pages: slower)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ckpt = checkpoint.load(args.checkpoint)
    data = load_dataset(args.dataset)
    digits, labels = data.test_x[: args.n].reshape(-1, 28, 28), data.test_y[: args.n]
    raw = float(np.mean(Predictor(ckpt).probabilities(digits / 255.0).argmax(axis=1) == labels))
    results: dict[str, float] = {"n": len(labels), "n_drawn": min(args.n_drawn, args.n), "direct": raw}
    direct_drawn = float(
        np.mean(Predictor(ckpt).probabilities(digits[: args.n_drawn] / 255.0).argmax(axis=1) == labels[: args.n_drawn])
    )
    results["direct_drawn"] = direct_drawn
    sys.stdout.write(
        f"{'direct (no files, no preprocessing)':<40} {raw:.2%} ({direct_drawn:.2%} on the first {args.n_drawn})\n"
    )
    for kind in CASES + STYLES:
        start = time.perf_counter()
        n = args.n if kind in CASES else min(args.n_drawn, args.n)
        results[kind] = accuracy(ckpt, digits[:n], labels[:n], kind)
        sys.stdout.write(f"{kind:<40} {results[kind]:.2%}  ({n} pictures, {time.perf_counter() - start:.1f} s)\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
