"""Measuring how well predict reads pictures: MNIST test digits turned into files of several kinds.

Used by scripts/predict_quality.py and the tests. The pictures are made from real MNIST
test digits (so the true label is known): (a) the 28x28 digit as it is; (b) inverted to
black ink on white and upscaled 4x; (c) that, off-center on a larger white canvas; and
digits as a person would draw them: thin or thick pen strokes, anywhere on a large page,
light on dark, or ink on a transparent background.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from mlpcli.files.checkpoint import Checkpoint
from mlpcli.inference.pictures import prepare_image
from mlpcli.inference.predictor import Predictor

CASES = ("a", "b", "c")
STYLES = ("thin", "thick", "light_on_dark", "transparent", "photo", "desk", "white_on_clear")
SUFFIX = {"desk": ".jpg"}  # a phone's photo is a JPEG


def case_picture(digit: np.ndarray, case: str, rng: np.random.Generator) -> Image.Image:
    """(a) the 28x28 digit as is; (b) inverted and upscaled 4x; (c) that, off-center on a larger white canvas."""
    if case == "a":
        return Image.fromarray(digit, mode="L")
    big = Image.fromarray(255 - digit, mode="L").resize((112, 112), Image.Resampling.BILINEAR)
    if case == "b":
        return big
    canvas = Image.new("L", (int(rng.integers(200, 400)), int(rng.integers(200, 400))), 255)
    canvas.paste(big, (int(rng.integers(0, canvas.width - 112)), int(rng.integers(0, canvas.height - 112))))
    return canvas


def drawn_picture(digit: np.ndarray, style: str, rng: np.random.Generator) -> Image.Image:
    """A digit as a person might draw it: a pen stroke of some width, anywhere on a large page.

    Styles: thin, thick (pen width), light_on_dark, transparent (RGBA ink on a clear background),
    photo (gray paper under uneven light, with sensor noise, in color), desk (an 800x600 photo of a
    sheet on a darker desk showing at every edge, uneven light), white_on_clear (white opaque strokes
    on a fully transparent canvas, as drawing widgets export).
    """
    shape = Image.fromarray(digit, mode="L").resize((140, 140), Image.Resampling.BILINEAR)
    shape = shape.point(lambda v: 255 if v > 128 else 0)
    if style == "thin":  # a pen about a third of MNIST's stroke width
        shape = shape.filter(ImageFilter.MinFilter(5))
    elif style == "thick":  # a marker about twice as wide
        shape = shape.filter(ImageFilter.MaxFilter(7))
    size = int(rng.integers(140, 280))
    shape = shape.resize((size, size), Image.Resampling.BILINEAR)
    width, height = 600, 500
    x0, y0 = int(rng.integers(0, width - size)), int(rng.integers(0, height - size))
    if style == "desk":
        width, height = 800, 600
        size = min(size, 260)
        left, top = int(rng.integers(40, 120)), int(rng.integers(30, 90))
        right, bottom = width - int(rng.integers(40, 120)), height - int(rng.integers(30, 90))
        x0, y0 = int(rng.integers(left + 10, right - size - 10)), int(rng.integers(top + 10, bottom - size - 10))
        shape = shape.resize((size, size), Image.Resampling.BILINEAR)
        yy, xx = np.mgrid[0:height, 0:width]
        light = 0.75 + 0.25 * (xx / width) * (0.5 + 0.5 * yy / height)  # a lamp on one side
        gray = np.full((height, width), float(rng.uniform(0.15, 0.3)), np.float32)  # the desk
        gray[top:bottom, left:right] = 0.92
        alpha = np.zeros((height, width), np.float32)
        alpha[y0 : y0 + size, x0 : x0 + size] = np.asarray(shape, np.float32) / 255.0
        gray = (gray * (1 - alpha) + 0.08 * alpha) * light + rng.normal(0, 0.02, gray.shape)
        return Image.fromarray(np.clip(gray * 255, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    if style == "white_on_clear":
        page = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        page.paste(Image.new("RGBA", (size, size), (255, 255, 255, 255)), (x0, y0), shape)
        return page
    if style == "photo":
        yy, xx = np.mgrid[0:height, 0:width]
        paper = 0.6 + 0.3 * (0.7 * xx / width + 0.3 * yy / height)  # light falling off across the page
        alpha = np.zeros((height, width), np.float32)
        alpha[y0 : y0 + size, x0 : x0 + size] = np.asarray(shape, np.float32) / 255.0
        gray = paper * (1 - alpha) + 0.25 * alpha + rng.normal(0, 0.03, paper.shape)
        rgb = np.stack([gray, gray * 0.97, gray * 0.9], axis=-1)
        return Image.fromarray(np.clip(rgb * 255, 0, 255).astype(np.uint8), mode="RGB")
    if style == "transparent":
        page = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        page.paste(Image.new("RGBA", (size, size), (30, 30, 160, 255)), (x0, y0), shape)
        return page
    background, ink = (20, 240) if style == "light_on_dark" else (235, 25)
    page = Image.new("L", (width, height), background)
    page.paste(ink, (x0, y0, x0 + size, y0 + size), shape)
    return page


def picture(digit: np.ndarray, kind: str, rng: np.random.Generator) -> Image.Image:
    """A picture of kind (a case or a drawn style) for a 28x28 uint8 MNIST digit."""
    return case_picture(digit, kind, rng) if kind in CASES else drawn_picture(digit, kind, rng)


def accuracy(ckpt: Checkpoint, digits: np.ndarray, labels: np.ndarray, kind: str, seed: int = 0) -> float:
    """Fraction of digits (n, 28, 28) predicted right after a round trip through a PNG file and preprocessing."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        images = []
        for i, digit in enumerate(digits):
            path = Path(tmp) / f"{kind}-{i}{SUFFIX.get(kind, '.png')}"
            picture(digit, kind, rng).save(path)
            images.append(prepare_image(path))
    probs = Predictor(ckpt).probabilities(np.stack(images))
    return float(np.mean(probs.argmax(axis=1) == labels))
