"""Phone-style photos of a digit on a sheet of paper on a desk, randomized, for measuring `mlpcli predict`.

Each case draws a real MNIST test digit (so its label is known) as a pen or pencil stroke on plain, ruled or
squared paper; lays the sheet on a desk (wood grain, stripes, tiles, fabric, a dark or a bright plain desk);
photographs it under perspective (up to 30 degrees of tilt) and in-plane rotation, with the sheet from 20 % to
95 % of the frame; lights it unevenly with a shadow across; adds sensor noise and blur; and saves it as a JPEG,
sometimes stored sideways with an EXIF rotation tag as phones do. Used by scripts/bench_photos.py and the tests.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

DESKS = ("wood", "stripes", "tiles", "fabric", "dark", "bright")
PAPERS = ("plain", "ruled", "squared")
PENS = ("black", "blue", "red", "pencil")


@dataclass(frozen=True)
class Case:
    """What a generated photo shows."""

    desk: str
    paper: str
    pen: str
    sheet: float  # the sheet's height as a fraction of the frame's
    tilt: float  # degrees of perspective
    exif: int  # EXIF orientation stored (1: none)
    corners: tuple[tuple[float, float], ...] = ()  # the sheet's corners in the photo as shown (EXIF applied)


def _smooth_noise(h: int, w: int, scale: int, rng: np.random.Generator) -> np.ndarray:
    small = rng.random((max(2, h // scale), max(2, w // scale))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def desk_texture(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """An RGB float32 (h, w, 3) desk in [0, 1]."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "wood":
        warp = 40 * _smooth_noise(h, w, 60, rng)
        rings = 0.5 + 0.5 * np.sin((xs + warp) * rng.uniform(0.05, 0.15) + 3 * _smooth_noise(h, w, 8, rng))
        base = np.array(rng.choice([[0.55, 0.36, 0.2], [0.7, 0.5, 0.3], [0.35, 0.22, 0.12]]), np.float32)
        tone = 0.75 + 0.35 * rings[..., None]
    elif kind == "stripes":
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(15, 60)
        band = (np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period) > 0).astype(np.float32)
        a, b = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
        return (band[..., None] * a + (1 - band[..., None]) * b).astype(np.float32)
    elif kind == "tiles":
        size = rng.uniform(40, 120)
        grout = ((xs % size) < 4) | ((ys % size) < 4)
        base = np.array(rng.uniform(0.4, 0.9, 3), np.float32)
        tone = np.where(grout, 0.45, 1.0)[..., None] * (0.9 + 0.1 * _smooth_noise(h, w, 30, rng))[..., None]
    elif kind == "fabric":
        weave = 0.5 + 0.25 * np.sin(xs * 1.3) * np.sin(ys * 1.3) + 0.25 * rng.random((h, w)).astype(np.float32)
        base = np.array(rng.uniform(0.2, 0.7, 3), np.float32)
        tone = (0.6 + 0.6 * weave)[..., None]
    elif kind == "dark":
        base = np.array(rng.uniform(0.05, 0.22, 3), np.float32)
        tone = (0.85 + 0.3 * _smooth_noise(h, w, 40, rng))[..., None]
    else:  # a bright plain desk, close to the paper
        base = np.array(rng.uniform(0.62, 0.8, 3), np.float32)
        tone = (0.95 + 0.1 * _smooth_noise(h, w, 40, rng))[..., None]
    return np.clip(base * tone, 0, 1).astype(np.float32)


def sheet_with_digit(digit: np.ndarray, paper: str, pen: str, rng: np.random.Generator) -> np.ndarray:
    """An RGB float32 sheet (A-format proportions) with the digit written on it."""
    h, w = 700, 500
    color = np.array(rng.uniform(0.9, 1.0, 3), np.float32)
    sheet = np.ones((h, w, 3), np.float32) * color
    line_color = np.array([0.55, 0.7, 0.9], np.float32) if rng.random() < 0.7 else np.array([0.6, 0.6, 0.6])
    if paper == "ruled":
        gap = int(rng.uniform(24, 36))
        for y in range(gap * 2, h, gap):
            sheet[y : y + 2] = line_color
        sheet[:, 70:72] = [0.9, 0.45, 0.45]  # the margin
    elif paper == "squared":
        gap = int(rng.uniform(18, 28))
        sheet[::gap] = line_color
        sheet[:, ::gap] = line_color
    size = int(w * rng.uniform(0.45, 0.8))
    shape = cv2.resize(digit.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_CUBIC)
    shape = np.clip((shape - 0.35) * 2.5, 0, 1)  # a pen line: MNIST's soft edge sharpened
    if pen == "pencil":
        shape *= rng.uniform(0.45, 0.75) * (0.7 + 0.3 * rng.random(shape.shape).astype(np.float32))
        ink = np.array([0.25, 0.25, 0.27], np.float32)
    else:
        ink = {"black": [0.08, 0.08, 0.1], "blue": [0.1, 0.15, 0.55], "red": [0.7, 0.1, 0.12]}[pen]
        ink = np.array(ink, np.float32)
    top = int(rng.uniform(0.1, 0.9) * (h - size))
    left = int(rng.uniform(0.1, 0.9) * (w - size))
    region = sheet[top : top + size, left : left + size]
    region[:] = region * (1 - shape[..., None]) + ink * shape[..., None]
    return sheet


def desk_photo(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, Case]:
    """A JPEG's bytes of the digit on a sheet on a desk, and what the photo shows."""
    desk, paper, pen = str(rng.choice(DESKS)), str(rng.choice(PAPERS)), str(rng.choice(PENS))
    W, H = (800, 600) if rng.random() < 0.5 else (600, 800)
    frame = desk_texture(desk, H, W, rng)
    sheet = sheet_with_digit(digit, paper, pen, rng)
    fraction = rng.uniform(0.2, 0.95)
    sh = fraction * H
    sw = sh * sheet.shape[1] / sheet.shape[0]
    if sw > 0.95 * W:
        sw, sh = 0.95 * W, 0.95 * W * sheet.shape[0] / sheet.shape[1]
    cx, cy = W / 2 + rng.uniform(-0.5, 0.5) * (W - sw), H / 2 + rng.uniform(-0.5, 0.5) * (H - sh)
    spin = math.radians(rng.uniform(-15, 15))
    corners = np.array([[-sw / 2, -sh / 2], [sw / 2, -sh / 2], [sw / 2, sh / 2], [-sw / 2, sh / 2]])
    rot = np.array([[math.cos(spin), -math.sin(spin)], [math.sin(spin), math.cos(spin)]])
    corners = corners @ rot.T
    tilt = rng.uniform(0, 30)  # perspective: the far edge shrinks by up to sin(tilt)
    shrink = 1 - math.sin(math.radians(tilt)) * 0.5
    edge = rng.integers(0, 4)  # which edge is the far one
    a, b = edge, (edge + 1) % 4
    mid = (corners[a] + corners[b]) / 2
    corners[a] = mid + (corners[a] - mid) * shrink
    corners[b] = mid + (corners[b] - mid) * shrink
    corners += [cx, cy]
    src = np.array([[0, 0], [sheet.shape[1], 0], [sheet.shape[1], sheet.shape[0]], [0, sheet.shape[0]]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    warped = cv2.warpPerspective(sheet, matrix, (W, H), flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.ones(sheet.shape[:2], np.float32), matrix, (W, H), flags=cv2.INTER_LINEAR)
    photo = frame * (1 - inside[..., None]) + warped * inside[..., None]
    # light: a gradient across the frame and a soft shadow over part of it
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    gradient = 1 - rng.uniform(0.1, 0.35) * (0.5 + 0.5 * np.sin((xs * math.cos(angle) + ys * math.sin(angle)) / W * 3))
    light = gradient
    if rng.random() < 0.6:
        shadow = np.zeros((H, W), np.float32)
        pts = rng.uniform([0, 0], [W, H], (4, 2)).astype(np.int32)
        cv2.fillConvexPoly(shadow, cv2.convexHull(pts), 1.0)
        shadow = cv2.GaussianBlur(shadow, (0, 0), rng.uniform(8, 30))
        light = light * (1 - rng.uniform(0.2, 0.45) * shadow)
    photo = photo * light[..., None]
    photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(0.5, 1.2))
    photo = photo + rng.normal(0, rng.uniform(0.01, 0.03), photo.shape).astype(np.float32)
    image = Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8), "RGB")
    exif = int(rng.choice([1, 1, 6, 8]))
    stored = {6: image.transpose(Image.Transpose.ROTATE_90), 8: image.transpose(Image.Transpose.ROTATE_270)}
    out = stored.get(exif, image)
    buf = io.BytesIO()
    info = Image.Exif()
    if exif != 1:
        info[0x0112] = exif  # phones store the pixels sideways and the rotation to undo as a tag
    out.save(buf, format="JPEG", quality=int(rng.integers(55, 92)), exif=info.tobytes())
    shown = tuple((float(x), float(y)) for x, y in corners)
    return buf.getvalue(), Case(desk, paper, pen, round(fraction, 2), round(tilt, 1), exif, shown)


def blank_photo(rng: np.random.Generator) -> bytes:
    """A sheet with no digit on a desk: predict must say there is no ink."""
    blank = np.zeros((28, 28), np.uint8)
    data, _ = desk_photo(blank, rng)
    return data
