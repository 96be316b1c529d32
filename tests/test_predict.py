"""Pictures in every format and mode, MNIST-style preprocessing, and its measured quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FULL_MNIST, needs_full_mnist
from picture_cases import CASES, STYLES, accuracy
from PIL import Image

from mlpcli.config import load_config
from mlpcli.data.load import load_dataset
from mlpcli.errors import ImageError
from mlpcli.files import checkpoint
from mlpcli.inference.pictures import load_gray, mnist_preprocess, prepare_image
from mlpcli.inference.predictor import Predictor
from mlpcli.training import service as training

CONFIGS = Path(__file__).parent.parent / "configs"


@pytest.fixture(scope="session")
def sample_digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("mnist-sample")
    return data.test_x.reshape(-1, 28, 28), data.test_y


def _digit_picture(digit: np.ndarray) -> Image.Image:
    """Black ink on white, 4x: how a scan of a digit looks."""
    return Image.fromarray(255 - digit, mode="L").resize((112, 112), Image.Resampling.BILINEAR)


@pytest.mark.parametrize(
    ("mode", "suffix"),
    [
        ("L", ".png"),
        ("RGB", ".jpg"),
        ("RGB", ".bmp"),
        ("P", ".gif"),
        ("RGB", ".tiff"),
        ("RGB", ".webp"),
        ("RGBA", ".png"),
        ("LA", ".png"),
        ("I;16", ".png"),
        ("1", ".png"),
        ("P", ".png"),
        ("CMYK", ".tiff"),
    ],
)
def test_every_format_and_mode_gives_the_same_digit(tmp_path, sample_digits, mode: str, suffix: str) -> None:
    digit = sample_digits[0][0]
    base = _digit_picture(digit)
    reference = mnist_preprocess(np.asarray(base, np.float32) / 255.0)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(base, np.uint16) * 257)  # 16-bit grayscale
    else:
        img = base.convert(mode)
    path = tmp_path / f"digit{suffix}"
    img.save(path)
    seen = prepare_image(path)
    assert seen.shape == (28, 28) and seen.dtype == np.float32
    tolerance = 0.25 if suffix in (".jpg", ".webp") or mode == "1" else 0.02
    assert np.abs(seen - reference).mean() < tolerance


def test_transparency_is_composited_onto_white(tmp_path) -> None:
    img = Image.new("RGBA", (100, 100), (0, 0, 0, 0))  # transparent black "paper"
    img.paste(Image.new("RGBA", (10, 60), (0, 0, 0, 255)), (45, 20))  # an opaque stroke
    img.save(tmp_path / "t.png")
    gray = load_gray(tmp_path / "t.png")
    assert gray[0, 0] == pytest.approx(1.0) and gray[50, 50] == pytest.approx(0.0)
    seen = prepare_image(tmp_path / "t.png")
    assert seen.max() == pytest.approx(1.0) and seen[0, 0] == 0  # ink bright, background black


def test_animated_gif_uses_the_first_frame(tmp_path, sample_digits) -> None:
    frames = [_digit_picture(sample_digits[0][i]).convert("P") for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "first.gif")
    np.testing.assert_allclose(prepare_image(tmp_path / "a.gif"), prepare_image(tmp_path / "first.gif"))


def test_the_digit_is_centered_by_its_center_of_mass_and_fits_20x20(tmp_path) -> None:
    img = Image.new("L", (500, 300), 255)
    img.paste(0, (400, 10, 430, 200))  # a tall bar near the top right corner
    img.save(tmp_path / "bar.png")
    seen = prepare_image(tmp_path / "bar.png")
    rows, cols = np.nonzero(seen > 0.1)
    assert rows.max() - rows.min() + 1 <= 20 and cols.max() - cols.min() + 1 <= 20
    ys, xs = np.mgrid[0:28, 0:28]
    assert abs((seen * ys).sum() / seen.sum() - 14) <= 1 and abs((seen * xs).sum() / seen.sum() - 14) <= 1


def test_huge_pictures_are_reduced_first(tmp_path) -> None:
    img = Image.new("L", (10000, 10000), 255)
    img.paste(0, (4000, 2000, 5000, 8000))
    img.save(tmp_path / "huge.png")
    assert prepare_image(tmp_path / "huge.png").max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "not an image"), (b"hello, I am text", "not an image"), (None, "truncated"), ("blank", "no ink")],
)
def test_unreadable_pictures_are_named(tmp_path, content, message) -> None:
    path = tmp_path / "bad.png"
    if content is None:
        _digit_picture(np.full((28, 28), 200, np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:60])
    elif content == "blank":
        Image.new("L", (50, 50), 255).save(path)
    else:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        prepare_image(path)
    assert str(path) in str(info.value)


def test_raw_needs_28x28(tmp_path, sample_digits) -> None:
    Image.fromarray(sample_digits[0][0]).save(tmp_path / "ok.png")
    np.testing.assert_allclose(prepare_image(tmp_path / "ok.png", raw=True), sample_digits[0][0] / 255.0, atol=1e-6)
    _digit_picture(sample_digits[0][0]).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="a raw picture must be 28x28 .MNIST.s form., this one is 112x112"):
        prepare_image(tmp_path / "big.png", raw=True)


def test_one_bad_file_does_not_stop_the_others(tmp_path, sample_model, sample_digits) -> None:
    _digit_picture(sample_digits[0][0]).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    preds, failures = Predictor(checkpoint.load(sample_model)).predict_pictures(
        [tmp_path / "good.png", tmp_path / "bad.png"]
    )
    assert [Path(p.file).name for p in preds] == ["good.png"] and [f[0].name for f in failures] == ["bad.png"]
    assert preds[0].probabilities.sum() == pytest.approx(1.0, abs=1e-5)


SLOW_KINDS = {"photo", "desk"}  # seconds each; the everyday run (-m "not slow") skips them, .ci/run does not


@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW_KINDS else k for k in CASES + STYLES]
)
def test_preprocessing_reads_pictures_as_well_as_the_raw_digits(sample_model, sample_digits, kind: str) -> None:
    """On the sample model: pictures of each kind are read within 3 points of feeding the digits directly."""
    n = 250 if kind in CASES else 150  # drawn pages are large: fewer of them
    digits, labels = sample_digits[0][:n], sample_digits[1][:n]
    ckpt = checkpoint.load(sample_model)
    direct = float(np.mean(Predictor(ckpt).probabilities(digits / 255.0).argmax(axis=1) == labels))
    assert accuracy(ckpt, digits, labels, kind) >= direct - 0.03


@pytest.mark.slow
@needs_full_mnist
def test_a_full_mnist_model_reads_each_kind_of_picture_at_97_percent(serve, monkeypatch, tmp_path) -> None:
    server = serve(Path(FULL_MNIST))
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("mnist"))
    cfg = load_config(CONFIGS / "mnist.yaml", ["train.threads=1"])  # one thread: the same weights on a busy machine
    result = training.run(training.prepare(cfg), tmp_path / "mnist")
    assert result.test.accuracy >= 0.98  # the accuracy configs/mnist.yaml promises
    ckpt = checkpoint.load(result.checkpoint)
    data = load_dataset("mnist")
    # every 10th test digit: 1,000 spread over both halves of the test set (its writers differ)
    digits, labels = data.test_x[::10].reshape(-1, 28, 28), data.test_y[::10]
    for kind in CASES:
        assert accuracy(ckpt, digits, labels, kind) >= 0.97, kind
    direct = float(np.mean(Predictor(ckpt).probabilities(digits[:300] / 255.0).argmax(axis=1) == labels[:300]))
    for kind in STYLES:
        assert accuracy(ckpt, digits[:300], labels[:300], kind) >= direct - 0.03, kind


def test_exif_rotation_is_applied(tmp_path, sample_digits) -> None:
    upright = _digit_picture(sample_digits[0][0]).convert("RGB")
    sideways = upright.rotate(90, expand=True)  # stored turned left, with a tag saying how to turn it back
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: turn 90 degrees clockwise to display
    sideways.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright.save(tmp_path / "upright.jpg", quality=95)
    assert np.abs(prepare_image(tmp_path / "phone.jpg") - prepare_image(tmp_path / "upright.jpg")).mean() < 0.03
