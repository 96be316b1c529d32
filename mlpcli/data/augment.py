"""Label-preserving distortions of digit images: affine (rotate, scale, shear, shift) and elastic.

One inverse map per image: each output pixel p reads the source at
``A^-1 (p - c - t) + c + d(p)``, where A = rotation x scale x shear about the image center c,
t is the shift, and d is Simard, Steinkraus & Platt's (2003) elastic field: uniform noise in
[-1, 1] smoothed by a Gaussian of width sigma and scaled by alpha. The source is sampled
bilinearly with zeros outside the image. Everything is vectorized over the batch in float32;
the randomness comes from the generator passed in, nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Array = np.ndarray

CHUNK = 64  # images distorted per pass (measured: 64 was fastest of 8..128 at 28x28)


@dataclass(frozen=True)
class Distortion:
    """The maximum of each distortion; 0 turns it off.

    rotate: degrees (uniform in +-rotate); scale: relative size change (+-); shear: horizontal
    shear factor (+-); shift: pixels in x and y (+-); elastic_alpha / elastic_sigma: Simard's
    field strength and smoothing width in pixels.
    """

    rotate: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    shift: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 0.0
    flip: float = 0.0  # probability of a left-right mirror (clothes, not digits: a mirrored 2 is no 2)

    @property
    def affine(self) -> bool:
        """True when any affine part is on."""
        return bool(self.rotate or self.scale or self.shear or self.shift or self.flip)

    @property
    def elastic(self) -> bool:
        """True when the elastic field is on."""
        return bool(self.elastic_alpha and self.elastic_sigma)

    @property
    def active(self) -> bool:
        """True when augmentation changes anything at all."""
        return self.affine or self.elastic


def gaussian_matrix(size: int, sigma: float) -> Array:
    """G (size, size) such that G @ f smooths a length-size signal f with a Gaussian (reflected edges).

    Each row sums to 1 (like scipy.ndimage.gaussian_filter with mode='reflect', truncated at 4 sigma).
    """
    radius = max(int(4.0 * sigma + 0.5), 1)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    G = np.zeros((size, size))
    for i in range(size):
        for k, w in zip(offsets, weights):
            j = i + k
            while not 0 <= j < size:  # reflect about the edges: ... 1 0 | 0 1 2 ... n-1 | n-1 n-2 ...
                j = -j - 1 if j < 0 else 2 * size - j - 1
            G[i, j] += w
    return G.astype(np.float32)


def field_basis(size: int, sigma: float, keep: float = 0.9999) -> Array:
    """B (size, k): the leading singular directions of the Gaussian filter, scaled by their singular values.

    Smoothing white noise F with G (G F G^T) gives the same covariance as B Z B^T with Z iid of the
    noise's variance (G = U S V^T, and V^T F V is white when F is), and keeping only the k directions
    that carry `keep` of the variance costs k^2 random numbers per field instead of size^2.
    """
    U, S, _ = np.linalg.svd(gaussian_matrix(size, sigma).astype(np.float64))
    share = np.cumsum(S**2) / np.sum(S**2)
    k = int(np.searchsorted(share, keep) + 1)
    return U[:, :k] * S[:k]


class Augmenter:
    """Distorts batches of (n, h, w) images; call it with the images and a np.random.Generator.

    Every output pixel's source coordinate is one row of coefficients times a fixed basis
    (u, v, 1 for the affine part, then the elastic field's directions), so the coordinates of a
    whole batch are a single matrix product.
    """

    def __init__(self, distortion: Distortion, height: int = 28, width: int = 28) -> None:
        self.d, self.h, self.w = distortion, height, width
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        self.cy, self.cx = (height - 1) / 2.0, (width - 1) / 2.0
        rows = [(xs - self.cx).ravel(), (ys - self.cy).ravel(), np.ones(height * width)]
        self.k = (0, 0)
        if distortion.elastic:
            bh = field_basis(height, distortion.elastic_sigma)
            bw = field_basis(width, distortion.elastic_sigma)
            self.k = (bh.shape[1], bw.shape[1])
            rows.extend(distortion.elastic_alpha * np.kron(bh, bw).T)  # vec(Bh Z Bw^T) = kron(Bh, Bw) vec(Z)
        self.basis = np.array(rows, dtype=np.float32)  # (3 + kh kw, h w)

    def coefficients(
        self, angle: Array, scale: Array, shear: Array, shift: Array, mirror: Array | None = None
    ) -> Array:
        """Affine coefficient rows (2n, 3): x rows then y rows, for angles (radians, counter-clockwise
        as displayed), scales, shear factors (n,), shifts (n, 2) in pixels (x, y), and which images to
        mirror left-right first (n,) bool."""
        # A = R(angle) S(scale) H(shear) with H = [[1, shear], [0, 1]]; y points down, so R uses -angle.
        cos, sin = np.cos(angle), np.sin(-angle)
        a00, a01 = scale * cos, scale * (cos * shear - sin)
        a10, a11 = scale * sin, scale * (sin * shear + cos)
        det = a00 * a11 - a01 * a10
        i00, i01, i10, i11 = a11 / det, -a01 / det, -a10 / det, a00 / det  # A^-1
        if mirror is not None:  # read the source at (-u, v): the mirror image, before the rest of the map
            i00, i10 = np.where(mirror, -i00, i00), np.where(mirror, -i10, i10)
        tx, ty = shift[:, 0], shift[:, 1]
        # source = A^-1 (p - c - t) + c, with p - c = (u, v)
        x_rows = np.stack([i00, i01, self.cx - i00 * tx - i01 * ty], axis=1)
        y_rows = np.stack([i10, i11, self.cy - i10 * tx - i11 * ty], axis=1)
        return np.concatenate([x_rows, y_rows])

    def source_coordinates(self, coefficients: Array, rng: np.random.Generator | None = None) -> Array:
        """Source (x, y) of every output pixel, (2, n, h w): affine coefficient rows (2n, 3), plus a
        random elastic field drawn from rng when the distortion has one."""
        n2 = coefficients.shape[0]
        full = np.empty((n2, self.basis.shape[0]), dtype=np.float32)
        full[:, :3] = coefficients
        if self.k != (0, 0):
            if rng is None:
                raise ValueError("an elastic distortion needs a random generator")
            # uniform [-1, 1] noise, as Simard's, in the filter's directions
            noise = rng.random((n2, self.k[0] * self.k[1]), dtype=np.float32)
            noise *= 2.0
            noise -= 1.0
            full[:, 3:] = noise
        return (full @ self.basis).reshape(2, n2 // 2, self.h * self.w)

    def draw(self, n: int, rng: np.random.Generator) -> Array:
        """Source coordinates (2, n, h w) of n random distortions."""
        d = self.d
        angle = np.radians(rng.uniform(-d.rotate, d.rotate, n)) if d.rotate else np.zeros(n)
        scale = 1.0 + rng.uniform(-d.scale, d.scale, n) if d.scale else np.ones(n)
        shear = rng.uniform(-d.shear, d.shear, n) if d.shear else np.zeros(n)
        shift = rng.uniform(-d.shift, d.shift, (n, 2)) if d.shift else np.zeros((n, 2))
        mirror = rng.random(n) < d.flip if d.flip else None
        return self.source_coordinates(self.coefficients(angle, scale, shear, shift, mirror), rng)

    def __call__(self, images: Array, rng: np.random.Generator, out: Array | None = None) -> Array:
        """Distorted float32 copies of images (n, h, w), uint8 or float32, into out (n, h w) when given;
        the images themselves when nothing is on."""
        if not self.d.active:
            return images
        n = images.shape[0]
        out = np.empty((n, self.h * self.w), dtype=np.float32) if out is None else out
        for lo in range(0, n, CHUNK):  # chunks whose temporaries stay in cache: twice as fast as one pass
            hi = min(lo + CHUNK, n)
            out[lo:hi] = bilinear(images[lo:hi], self.draw(hi - lo, rng))
        return out.reshape(images.shape)


def bilinear(images: Array, coords: Array) -> Array:
    """Sample images (n, h, w), uint8 or float32, at real coordinates coords (2, n, h w) (x then y),
    bilinearly; zero outside the image. Returns (n, h w) float32; coords is overwritten."""
    n, h, w = images.shape
    qh, qw = h + 2, w + 2
    # quad[i, y, x] holds the four pixels (y, x), (y, x+1), (y+1, x), (y+1, x+1) of the image padded
    # with zeros, so one gather of 4-pixel items fetches every neighbour a sample needs.
    pixel = np.uint8 if images.dtype == np.uint8 else np.float32
    quad = np.zeros((n, qh, qw, 4), dtype=pixel)
    quad[:, 1 : h + 1, 1 : w + 1, 0] = images
    quad[:, 1 : h + 1, 0:w, 1] = images
    quad[:, 0:h, 1 : w + 1, 2] = images
    quad[:, 0:h, 0:w, 3] = images
    coords += 1.0  # into padded coordinates; beyond one pixel outside, everything is zero
    np.clip(coords[0], 0.0, float(w + 1), out=coords[0])
    np.clip(coords[1], 0.0, float(h + 1), out=coords[1])
    cell = np.floor(coords)  # (np.modf does both in one call, but measured 7x slower in float32)
    frac = np.subtract(coords, cell, out=coords)  # in [0, 1)
    # the flat index of each sample's quad, computed in float32 (exact below 2^24) and converted once
    where = cell[1]
    where *= qw
    where += cell[0]
    where += (np.arange(n, dtype=np.float32) * (qh * qw))[:, None]
    item = np.uint32 if pixel == np.uint8 else np.complex128  # four pixels as one item
    gathered = quad.view(item).reshape(-1).take(where.astype(np.intp)).view(pixel).reshape(n * h * w, 4)
    c0, c1, c2, c3 = gathered.T.astype(np.float32).reshape(4, n, h * w)  # planar: contiguous arithmetic
    fx, fy = frac
    top = np.subtract(c1, c0, out=c1)
    top *= fx
    top += c0  # the top row, interpolated in x
    bottom = np.subtract(c3, c2, out=c3)
    bottom *= fx
    bottom += c2
    bottom -= top
    bottom *= fy
    top += bottom
    return top


def side(features: int) -> int:
    """The side of a square image of `features` pixels; ValueError when it is not square."""
    s = math.isqrt(features)
    if s * s != features:
        raise ValueError(f"augmentation needs square images; {features} pixels are not a square")
    return s
