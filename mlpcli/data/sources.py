"""Where each dataset comes from, with the checksums that pin its files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
DIGITS = tuple(str(i) for i in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its name and the sha256 of the gz file and of its decompressed content."""

    role: str
    name: str
    sha256_gz: str
    sha256_raw: str


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: its four files, mirrors in the order tried, class names, system folders."""

    name: str
    files: tuple[DataFile, ...]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    system_dirs: tuple[Path, ...] = ()

    def file(self, role: str) -> DataFile:
        """The file playing role (train_images, train_labels, test_images, test_labels)."""
        return next(f for f in self.files if f.role == role)


def _files(hashes: dict[str, tuple[str, str]]) -> tuple[DataFile, ...]:
    return tuple(DataFile(role, FILE_NAMES[role], *hashes[role]) for role in ROLES)


MNIST = DatasetSpec(
    name="mnist",
    files=_files(
        {
            "train_images": (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            "train_labels": (
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            "test_images": (
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            "test_labels": (
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        }
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    classes=DIGITS,
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    files=_files(
        {
            "train_images": (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            "train_labels": (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
            "test_images": (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            "test_labels": (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        }
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    classes=FASHION_CLASSES,
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}

# Shipped inside the package: the first 5,000 training and 1,000 test digits of MNIST.
SAMPLE_NAME = "mnist-sample"
SAMPLE_DIR = Path(__file__).parent / "sample"


def file_candidates(name: str) -> tuple[str, ...]:
    """Names a dataset file may carry in a folder: gzipped or not, and Kaggle's dotted spelling."""
    raw = name.removesuffix(".gz")
    dotted = raw.replace("-idx", ".idx")
    return (name, raw, dotted + ".gz", dotted)
