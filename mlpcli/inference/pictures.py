"""Reading pictures of digits and turning them into what an MNIST network expects.

A user's picture is not an MNIST digit, so by default it goes through MNIST's own
preprocessing: grayscale; invert when the background is light (MNIST is light ink on
black); crop to the ink; bring thin strokes to MNIST's weight; fit into 20x20 keeping the
aspect ratio, anti-aliased; paste into 28x28 with the center of mass at the center.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mlpcli.errors import ImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
# The only decoders Pillow may use, whatever a file's name says: never Ghostscript (EPS), never a plugin
# that runs another program.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
READABLE = "PNG, JPEG, BMP, GIF, TIFF, WebP, PGM/PPM/PBM"
WORKING_SIZE = 1024  # larger pictures are reduced to this before any conversion (bounded memory)
MAX_PIXELS = 100_000_000  # refuse decompression bombs outright (a 100-megapixel photo still fits)
BOX = 20  # MNIST fits each digit into 20x20 ...
SIDE = 28  # ... and centers it in 28x28 by its center of mass
CENTER = 14.0  # MNIST's mean center of mass (row, col), measured on the training set
MID = 80  # intermediate box for measuring and thickening strokes (4x the final box)
TARGET_STROKE = MID / 8  # MNIST strokes are about 2.5 px in the 20 px box
NOISE_FLOOR = 0.1
MIN_CONTRAST = 0.15
NOISY = 0.02  # background noise (std) above which a photo is median-filtered first


def load_gray(path: Path | BinaryIO, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A picture as float32 gray (h, w) in [0, 1] (0 black, 1 white); transparency composited onto white.

    path may be an open binary file (an upload); `name` is what error messages call it. Pictures of more
    than max_pixels are refused before they are decoded.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if name is None:
        name = str(path)

    Image.MAX_IMAGE_PIXELS = max_pixels // 2  # Pillow refuses twice this, and warns (ignored below) above it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=FORMATS) as img:
                img.seek(0)  # first frame of an animation
                if img.mode in ("RGB", "L") and img.format == "JPEG":
                    img.draft(img.mode, (WORKING_SIZE, WORKING_SIZE))  # JPEG decodes at reduced size
                img.load()
                return _to_gray(ImageOps.exif_transpose(img))  # phones store photos sideways plus a rotation tag
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a folder") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image mlpcli reads ({READABLE})") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: too large ({max_pixels:,} pixels at most)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name}: cannot decode the image ({exc}); is the file truncated?") from None
    except Exception as exc:  # a decoder's own failure on a hostile file is still one line
        raise ImageError(f"{name}: cannot decode the image ({type(exc).__name__}: {exc})") from None


def _to_gray(img: object) -> np.ndarray:
    """Pillow image of any mode -> float32 (h, w) gray in [0, 1], reduced to WORKING_SIZE first."""
    from PIL import Image

    assert isinstance(img, Image.Image)
    if img.mode in ("1", "P", "PA"):
        img = img.convert("RGBA" if ("transparency" in img.info or img.mode == "PA") else "L")
    elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    if max(img.size) > WORKING_SIZE:
        factor = -(-max(img.size) // WORKING_SIZE)
        img = (
            img.reduce(factor)
            if img.mode in ("L", "LA", "RGB", "RGBA", "I", "F")
            else img.resize((max(1, img.width // factor), max(1, img.height // factor)), Image.Resampling.BOX)
        )
    mode = img.mode
    arr = np.asarray(img)
    if mode.startswith("I;16") or mode == "I":
        scale = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return np.clip(arr.astype(np.float32) / scale, 0, 1)
    if mode == "F":
        arr = arr.astype(np.float32)
        return np.clip(arr / 255.0 if arr.max(initial=0) > 1 else arr, 0, 1)
    arr = arr.astype(np.float32) / 255.0
    if arr.ndim == 2:
        return arr
    alpha = arr[..., -1] if mode in ("LA", "RGBA") else None
    color = arr[..., :-1] if alpha is not None else arr
    gray = color[..., 0] if color.shape[-1] == 1 else color[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    if alpha is not None:
        composite = alpha * gray + (1 - alpha)  # composite onto white paper
        if _contrast(composite) < 0.5 * _contrast(alpha):
            # the colour carries little of the drawing (white strokes on a clear canvas): the alpha is the ink
            return (1.0 - alpha).astype(np.float32)
        gray = composite
    return gray.astype(np.float32)


def _contrast(a: np.ndarray) -> float:
    """The spread of a picture's values (max - min)."""
    return float(np.ptp(a)) if a.size else 0.0


def _resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased resize of a float image (h, w)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    return np.array(img.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32).clip(0, 1)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _fit(a: np.ndarray, box: int) -> np.ndarray:
    """Resize a (h, w) so its longer side is box, keeping the aspect ratio."""
    h, w = a.shape
    s = box / max(h, w)
    return _resize(a, max(1, round(w * s)), max(1, round(h * s)))


def _stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 * area / boundary (a stroke of width w and length L has area wL, boundary 2L)."""
    b = ink > 0.5
    area = int(b.sum())
    if area == 0:
        return 0.0
    p = np.pad(b, 1)
    interior = b & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    boundary = area - int(interior.sum())
    return 2.0 * area / max(boundary, 1)


def _thicken(ink: np.ndarray) -> np.ndarray:
    """Grayscale dilation until strokes reach MNIST's relative weight."""
    from PIL import Image, ImageFilter

    width = _stroke_width(ink)
    if width >= 0.6 * TARGET_STROKE:
        return ink
    size = int(min(TARGET_STROKE - width, 9)) // 2 * 2 + 1
    if size < 3:
        return ink
    padded = np.pad(ink, size)
    img = Image.fromarray(padded.astype(np.float32), mode="F").filter(ImageFilter.MaxFilter(size))
    return np.array(img, dtype=np.float32)


def _background(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """A smooth background under ink-bright values (h, w), and the noise level around it.

    A quadratic surface is fitted to the pixels that are not ink, then refitted on those
    close to it: this follows uneven lighting in a photo, and is exactly 0 for a clean scan.
    """
    h, w = ink.shape
    step = max(1, max(h, w) // 128)  # fit on at most ~128 x 128 samples
    small = ink[::step, ::step]
    ys, xs = np.mgrid[0 : small.shape[0], 0 : small.shape[1]]
    u = (xs * step / max(w - 1, 1) - 0.5).reshape(-1)
    v = (ys * step / max(h - 1, 1) - 0.5).reshape(-1)
    basis = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)
    z = small.reshape(-1).astype(np.float64)
    keep = z <= np.median(z)  # ink rarely covers half a picture
    sigma = 0.0
    coef = np.zeros(basis.shape[1])
    for _ in range(3):
        coef = np.linalg.lstsq(basis[keep], z[keep], rcond=None)[0]
        resid = z - basis @ coef
        sigma = 1.4826 * float(np.median(np.abs(resid[keep])))
        keep = resid < 3 * sigma + 0.02
    ys, xs = np.mgrid[0:h, 0:w]
    u, v = xs / max(w - 1, 1) - 0.5, ys / max(h - 1, 1) - 0.5
    surface = coef[0] + coef[1] * u + coef[2] * v + coef[3] * u * u + coef[4] * u * v + coef[5] * v * v
    return surface.astype(np.float32), sigma


def _despeckle(mask: np.ndarray) -> np.ndarray:
    """Drop ink pixels with fewer than two ink neighbours (noise), keeping one-pixel pen strokes."""
    p = np.pad(mask, 1).astype(np.int8)
    neighbours = sum(
        p[1 + dy : p.shape[0] - 1 + dy, 1 + dx : p.shape[1] - 1 + dx]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )
    return mask & (neighbours >= 2)


def _median3(a: np.ndarray) -> np.ndarray:
    from PIL import Image, ImageFilter

    img = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F").filter(ImageFilter.MedianFilter(3))
    return np.array(img, dtype=np.float32)


def extract_ink(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """Gray picture (h, w) in [0, 1] -> ink intensity in [0, 1] (0 where there is no ink).

    Dark ink on light paper is inverted; uneven lighting is removed; noise is filtered and
    thresholded against its own level; the strokes' typical intensity becomes 1.
    """
    gray = _without_desk(gray)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = 1.0 - gray if float(np.median(border)) > 0.5 else gray.astype(np.float32)
    surface, sigma = _background(ink)
    resid = ink - surface
    if sigma > NOISY and min(ink.shape) >= 16:  # a noisy photo: filter, then measure again
        ink = _median3(ink)
        surface, sigma = _background(ink)
        resid = ink - surface
    threshold = max(4.0 * sigma, MIN_CONTRAST * 0.5)
    mask = _despeckle(resid > threshold) if sigma > 0.005 else resid > threshold  # specks only where there is noise
    if not mask.any() or float(resid.max()) < MIN_CONTRAST:
        raise ImageError(f"{name}: no ink found (the picture is blank or has almost no contrast)")
    peak = float(np.percentile(resid[mask], 90))  # the strokes' own intensity, not a stray bright pixel
    out = np.clip(resid / max(peak, 1e-6), 0, 1).astype(np.float32)
    floor = max(NOISE_FLOOR, 2.0 * sigma / max(peak, 1e-6))
    out[out < floor] = 0
    r0, r1, c0, c1 = _bbox(mask)
    cropped = np.zeros_like(out)
    cropped[r0:r1, c0:c1] = out[r0:r1, c0:c1]  # nothing outside the ink's own bounding box
    return cropped


def _without_desk(gray: np.ndarray) -> np.ndarray:
    """A sheet of paper photographed on a darker desk: the desk (dark, touching the picture's edge) becomes paper.

    The paper is what most of the picture shows; when that is light but the edges are dark, the dark
    regions connected to the edges are the desk, not ink (strokes lie inside the sheet). Found by
    flooding from the edges over dark pixels on a reduced copy; other pictures are returned as they are.
    """
    paper = float(np.median(gray))
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if paper <= 0.5 or float(np.median(border)) > 0.5 * paper:
        return gray
    step = max(1, max(gray.shape) // 200)
    small = gray[::step, ::step]
    dark = small < 0.5 * (paper + float(np.percentile(small, 1)))
    desk = np.zeros_like(dark)
    desk[0], desk[-1], desk[:, 0], desk[:, -1] = dark[0], dark[-1], dark[:, 0], dark[:, -1]
    while True:  # grow from the edges through dark pixels (4-neighbours) until nothing changes
        grown = desk.copy()
        grown[1:] |= desk[:-1]
        grown[:-1] |= desk[1:]
        grown[:, 1:] |= desk[:, :-1]
        grown[:, :-1] |= desk[:, 1:]
        grown &= dark
        if np.array_equal(grown, desk):
            break
        desk = grown
    full = np.repeat(np.repeat(desk, step, axis=0), step, axis=1)[: gray.shape[0], : gray.shape[1]]
    # a margin of one reduced pixel around the desk, where the sheet's edge is blurred
    edge = full.copy()
    for shift in range(1, step + 2):
        edge[shift:] |= full[:-shift]
        edge[:-shift] |= full[shift:]
        edge[:, shift:] |= full[:, :-shift]
        edge[:, :-shift] |= full[:, shift:]
    out = gray.copy()
    out[edge] = paper
    return out


def find_ink(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """Ink intensity (h, w) in [0, 1] of a gray picture: a photo of a sheet on a desk through sheet.py (the sheet
    found, rectified, its ruling removed), any other picture (a drawing, a scan, light ink on dark) through
    extract_ink. ImageError when there is no ink."""
    from mlpcli.inference import sheet

    corners = sheet.find_sheet(gray) if min(gray.shape) >= 64 else None
    if corners is None:
        return extract_ink(gray, name)
    try:
        return sheet.ink_on_paper(sheet.rectify(gray, corners), name)
    except ImageError:
        if sheet.area(corners) >= sheet.SURE_SHEET * gray.size:
            raise  # a sheet this large is one: it is blank
        return extract_ink(gray, name)  # a small bright patch taken for a sheet (a page's, a stroke's): look again


def mnist_preprocess(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """Gray picture (h, w) in [0, 1] -> MNIST-style (28, 28) float32, ink bright on black."""
    ink = find_ink(gray, name)
    r0, r1, c0, c1 = _bbox(ink > 0)
    mid = _fit(ink[r0:r1, c0:c1], MID)
    mid /= max(float(mid.max()), 1e-6)
    mid = _thicken(mid)
    mid[mid < NOISE_FLOOR] = 0
    r0, r1, c0, c1 = _bbox(mid > 0)
    digit = _fit(mid[r0:r1, c0:c1], BOX)
    digit /= max(float(digit.max()), 1e-6)
    return center_in_field(digit)


def center_in_field(digit: np.ndarray) -> np.ndarray:
    """Paste digit (h, w <= 20) into 28x28 so its center of mass lands on MNIST's center."""
    h, w = digit.shape
    total = float(digit.sum())
    ys, xs = np.mgrid[0:h, 0:w]
    cy = float((digit * ys).sum() / total) if total else (h - 1) / 2
    cx = float((digit * xs).sum() / total) if total else (w - 1) / 2
    top = int(np.clip(round(CENTER - cy), 0, SIDE - h))
    left = int(np.clip(round(CENTER - cx), 0, SIDE - w))
    out = np.zeros((SIDE, SIDE), np.float32)
    out[top : top + h, left : left + w] = digit
    return out


def raw_image(gray: np.ndarray, name: str) -> np.ndarray:
    """A 28x28 picture already in MNIST's form (light ink on black), used as it is."""
    if gray.shape != (SIDE, SIDE):
        raise ImageError(
            f"{name}: a raw picture must be 28x28 (MNIST's form), this one is {gray.shape[1]}x{gray.shape[0]}"
        )
    return gray.astype(np.float32)


def raw_problem(image: np.ndarray) -> str | None:
    """Why a picture given with --raw is plainly not in MNIST's form (a light background), or None."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    if float(np.median(border)) > 0.5:
        return (
            "--raw, but the picture has a light background and MNIST's digits are light ink on black: "
            "the prediction is unreliable; leave out --raw and mlpcli inverts, crops and centers it"
        )
    return None


def prepare_image(
    path: Path | BinaryIO, raw: bool = False, name: str | None = None, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Read path (or an open binary file called `name`) and return the (28, 28) float32 image in [0, 1]
    the network will see."""
    name = str(path) if name is None else name
    gray = load_gray(path, name, max_pixels)
    return raw_image(gray, name) if raw else mnist_preprocess(gray, name)


def explain_image(path: Path | BinaryIO, name: str | None = None, out: Path | None = None) -> Path:
    """A PNG, side by side, of what predict's preprocessing saw in a picture: the picture (the sheet found
    outlined in red), the sheet rectified, the ink found, and the 28x28 the network sees. Written to `out`
    (default: the picture's name with -explain.png); ImageError as prepare_image."""
    from PIL import Image, ImageDraw

    from mlpcli.inference import sheet

    name = str(path) if name is None else name
    gray = load_gray(path, name)
    corners = sheet.find_sheet(gray) if min(gray.shape) >= 64 else None
    paper = sheet.rectify(gray, corners) if corners is not None else gray
    ink = sheet.ink_on_paper(paper, name) if corners is not None else extract_ink(gray, name)
    stages = [_picture(gray), _picture(paper), _picture(ink), _picture(mnist_preprocess(gray, name))]
    if corners is not None:
        ImageDraw.Draw(stages[0]).polygon([(float(x), float(y)) for x, y in corners], outline=(230, 30, 30), width=5)
    size = 256
    board = Image.new("RGB", (4 * size + 30, size), (255, 255, 255))
    for i, stage in enumerate(stages):
        scale = size / max(stage.width, stage.height)
        small = stage.resize((max(1, round(stage.width * scale)), max(1, round(stage.height * scale))))
        board.paste(small, (i * (size + 10), (size - small.height) // 2))
    if out is None:
        out = Path(name).with_name(Path(name).stem + "-explain.png")
    board.save(out)
    return out


def _picture(a: np.ndarray) -> Any:
    """A gray (h, w) array in [0, 1] as an RGB Pillow image."""
    from PIL import Image

    return Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8), mode="L").convert("RGB")
