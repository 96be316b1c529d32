"""How well `mlpcli predict` reads phone-style photos of a digit on paper on a desk (tests/desk_cases.py).

    python scripts/bench_photos.py CHECKPOINT [--count 400] [--seed 0]

Generates --count photos from MNIST's shipped test sample (each with a random desk, paper, pen, size, tilt,
light, shadow, JPEG quality and EXIF rotation), predicts each through predict's own preprocessing, and prints
the accuracy overall and by desk, paper and pen, and how many blank sheets say they are blank.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from desk_cases import blank_photo, desk_photo  # noqa: E402

from mlpcli.data.load import load_dataset  # noqa: E402
from mlpcli.errors import ImageError  # noqa: E402
from mlpcli.inference.pictures import prepare_image  # noqa: E402
from mlpcli.inference.predictor import Predictor  # noqa: E402


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    predictor = Predictor.load(args.checkpoint)
    data = load_dataset("mnist-sample")
    rng = np.random.default_rng(args.seed)
    right, no_ink, total, wrong = 0, 0, Counter(), Counter()
    for n in range(args.count):
        i = int(rng.integers(0, len(data.test_y)))
        photo, case = desk_photo(data.test_x[i].reshape(28, 28), rng)
        try:
            x = prepare_image(io.BytesIO(photo), name=f"photo {n}")
            ok = int(np.argmax(predictor.probabilities(x.reshape(1, -1)))) == int(data.test_y[i])
        except ImageError:
            ok, no_ink = False, no_ink + 1
        right += ok
        for key in ("desk", "paper", "pen"):
            total[key, getattr(case, key)] += 1
            wrong[key, getattr(case, key)] += not ok
    blanks = 0
    for _ in range(args.count // 10):
        try:
            prepare_image(io.BytesIO(blank_photo(rng)), name="blank")
        except ImageError:
            blanks += 1
    print(f"{right}/{args.count} right ({right / args.count:.1%}); {no_ink} said 'no ink'")
    for key in sorted(total):
        print(f"  {key[0]:>5} {key[1]:<8} {total[key] - wrong[key]}/{total[key]}")
    print(f"blank sheets said blank: {blanks}/{args.count // 10}")


if __name__ == "__main__":
    main()
