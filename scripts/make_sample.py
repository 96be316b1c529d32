"""Cut the shipped mnist-sample from the official MNIST files.

    python scripts/make_sample.py ../shared/data/mnist mlpcli/data/sample
    python scripts/make_sample.py ../shared/data/mnist tests/fixtures/mnist-tiny 300 100

Writes the first 5,000 training and 1,000 test digits (or the counts given) as IDX gz files and prints their
sha256. MNIST: Yann LeCun, Corinna Cortes, Christopher J.C. Burges, CC BY-SA 3.0.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from mlpcli.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, write_idx
from mlpcli.data.sources import FILE_NAMES

COUNTS = {"train": 5000, "test": 1000}


def main(src: Path, dest: Path, counts: dict[str, int]) -> None:
    """Write the sample into dest and print the checksums."""
    dest.mkdir(parents=True, exist_ok=True)
    for role, name in FILE_NAMES.items():
        split = role.split("_")[0]
        magic = IMAGES_MAGIC if role.endswith("images") else LABELS_MAGIC
        array = read_idx(src / name, magic)[: counts[split]]
        write_idx(dest / name, array)
        digest = hashlib.sha256((dest / name).read_bytes()).hexdigest()
        sys.stdout.write(f"{digest}  {name}  {array.shape}\n")


if __name__ == "__main__":
    sizes = dict(COUNTS)
    if len(sys.argv) == 5:
        sizes = {"train": int(sys.argv[3]), "test": int(sys.argv[4])}
    main(Path(sys.argv[1]), Path(sys.argv[2]), sizes)
