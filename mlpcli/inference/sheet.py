"""A digit on a sheet of paper photographed on a desk: find the sheet, rectify it, find the ink on it.

With OpenCV (a core dependency: `predict` reads phone photos as they come):

1. **The sheet** is the large bright region of low texture (paper is smooth; wood grain, stripes, tiles and
   fabric are not): on a reduced copy, pixels brighter than Otsu's split of the picture whose local standard
   deviation is low, closed and opened, the largest connected part, its convex hull. When that part is a
   clear quadrilateral (or, failing that, its smallest enclosing rectangle) covering 1 % to 97 % of the frame,
   it is the sheet; otherwise the picture is all paper.
2. **Rectified**: the sheet's four corners are mapped to an upright rectangle (a perspective transform), which
   undoes a tilted phone and an in-plane rotation; a thin margin is dropped (the sheet's shadowed edge).
3. **The ink** is what is darker than the paper around it: the paper's local brightness is a morphological
   closing (it removes dark strokes thinner than its size) smoothed by a median, and ink is the relative
   darkness (paper - pixel) / paper, which no shadow or uneven light changes. Ruled and squared lines are
   long, thin and straight: an opening with a long horizontal and a long vertical line finds them, and they
   are removed. The ink's connected parts around the largest one are the digit; specks are dropped.

What comes out is the ink's intensity, cropped to the digit, for MNIST's own centering (pictures.py). A sheet
with no ink raises ImageError. pictures.explain_image draws every stage (predict --explain).
"""

from __future__ import annotations

import numpy as np

from mlpcli.errors import ImageError

FIND_SIZE = 400  # the sheet is looked for on a copy this large (its longer side)
SMOOTH_STD = 0.045  # paper's local standard deviation stays below this (0-1 gray), textured desks exceed it
SURE_SHEET = 0.05  # a sheet this large a share of the frame is surely one: blank, it says so
MIN_SHEET, MAX_SHEET = 0.01, 0.97  # a sheet covers this share of the frame; more is "all paper"
DESK_DARKER = 0.06  # the desk beside a sheet is at least this much darker than the paper, unless textured
ASPECT = 2.2  # a sheet's sides (A4's 1.41, a square note's 1) stay within this ratio under perspective
MARGIN = 0.03  # of the rectified sheet's sides, dropped (the edge and its shadow)
LINE = 0.85  # a ruled or squared line runs across nearly the whole sheet (a digit's stroke does not)
MIN_INK = 0.12  # relative darkness below this is paper (ruling lines of light blue included, after removal)
MIN_PART = 0.0004  # ink parts smaller than this share of the sheet are specks
RIM = 0.025  # of the rectified sheet's shorter side, cleared along its edges (after the margin)
MIN_DIGIT = 0.05  # the digit's largest part spans at least this share of the sheet's shorter side
STROKE_SHARE = 0.45  # a stroke's widest part is at most this share of its part's span
SHARP = 0.03  # a stroke's edge: the mean brightness step per pixel around it (0-1 gray)
MIN_STROKE = 0.2  # a stroke is at least this much darker than the paper around it (median over the part)


def _cv2():  # noqa: ANN202 - the module
    try:
        import cv2
    except ImportError:  # a core dependency: only a broken or hand-made environment lacks it
        raise ImageError(
            "reading pictures needs OpenCV, which mlpcli depends on: pip install opencv-python-headless"
        ) from None
    return cv2


def find_sheet(gray: np.ndarray) -> np.ndarray | None:
    """The sheet's corners (4, 2) float32 in gray's pixels (top-left, top-right, bottom-right, bottom-left), or
    None when the picture shows no sheet on a desk (all paper, or nothing paper-like).

    Candidates are the smooth regions brighter than each of several levels (Otsu's and percentiles: a sheet
    in shadow is darker than a lit desk, never than the desk beside it); a candidate must be solid and
    four-sided (its area near its hull's, its hull near its enclosing rectangle's) and stand out from the ring
    around it, brighter than it or smoother; the one that stands out most is the sheet."""
    cv2 = _cv2()
    h, w = gray.shape
    scale = FIND_SIZE / max(h, w)
    small = cv2.resize(gray.astype(np.float32), (max(8, round(w * scale)), max(8, round(h * scale))))
    small = cv2.GaussianBlur(small, (3, 3), 0)
    mean = cv2.blur(small, (7, 7))
    std = np.sqrt(np.maximum(cv2.blur(small * small, (7, 7)) - mean * mean, 0))
    smooth = std < SMOOTH_STD
    k = max(3, round(min(small.shape) / 60)) | 1
    ring_size = max(5, round(min(small.shape) / 25)) | 1
    total = float(small.shape[0] * small.shape[1])
    wide = max(3, round(min(small.shape) / 3)) | 1
    lit = mean / np.maximum(cv2.blur(mean, (wide, wide)), 0.02)  # brightness against the light around: shadows fade
    best, best_score = None, 0.02  # a candidate must stand out at least this much
    candidates = []
    for source in (mean, lit / max(float(lit.max()), 1e-6)):
        otsu, _ = cv2.threshold((source * 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        levels = {otsu / 255.0, *np.percentile(source, [30, 50, 70, 85, 93, 97]).tolist()}
        candidates += [(source, level) for level in sorted(levels)]
    for source, level in candidates:
        paper = ((source >= level) & smooth).astype(np.uint8)
        paper = cv2.morphologyEx(paper, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
        paper = cv2.morphologyEx(paper, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
        contours, _ = cv2.findContours(paper, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            hull = cv2.convexHull(contour)
            hull_area = cv2.contourArea(hull)
            if not MIN_SHEET <= hull_area / total <= MAX_SHEET:
                continue
            (_, _), (rw, rh), _ = cv2.minAreaRect(hull)
            if cv2.contourArea(contour) < 0.8 * hull_area or hull_area < 0.8 * rw * rh:
                continue  # not a solid four-sided region
            if max(rw, rh) > ASPECT * min(rw, rh):
                continue  # too long and thin for a sheet under any tilt: a bright stroke on a dark page
            inside = np.zeros(small.shape, np.uint8)
            cv2.fillConvexPoly(inside, hull, 1)
            ring = cv2.dilate(inside, np.ones((ring_size, ring_size), np.uint8)) & (1 - inside)
            if ring.sum() < 0.3 * cv2.arcLength(hull, True) * ring_size:
                continue  # most of its edge is the frame's: no desk around it to stand out from
            rest = inside == 0  # a desk shows beside a sheet: darker than the paper, or textured
            if float(np.median(small[inside > 0]) - np.median(small[rest])) < DESK_DARKER and (
                float(std[rest].mean()) < SMOOTH_STD
            ):
                continue  # paper all around (a page, the inside of a drawn 0): no sheet on a desk
            # a sheet's edge is a step down all around it (not a pen stroke beside a bright patch of one page)
            step = float(np.median(small[inside > 0]) - np.percentile(small[ring > 0], 70))
            textured = float(np.median(std[ring > 0])) >= SMOOTH_STD  # or the start of a textured desk
            if step < DESK_DARKER / 2 and not textured:
                continue  # light falling off across one page is no edge
            score = step + max(0.0, float(std[ring > 0].mean() - std[inside > 0].mean()))
            score *= (hull_area / total) ** 0.25  # of two that stand out alike, the larger is the sheet
            if score > best_score:
                best, best_score = hull, score
    if best is None:
        return None
    quad = cv2.approxPolyDP(best, 0.02 * cv2.arcLength(best, True), True).reshape(-1, 2)
    if len(quad) != 4:
        quad = cv2.boxPoints(cv2.minAreaRect(best))
    return _ordered(quad.astype(np.float32) / scale)


def area(corners: np.ndarray) -> float:
    """The area in pixels of the quadrilateral corners (4, 2) (the shoelace formula)."""
    x, y = corners[:, 0].astype(np.float64), corners[:, 1].astype(np.float64)
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _ordered(quad: np.ndarray) -> np.ndarray:
    """Corners as top-left, top-right, bottom-right, bottom-left (by x + y and y - x)."""
    s, d = quad.sum(axis=1), quad[:, 1] - quad[:, 0]
    return np.array([quad[np.argmin(s)], quad[np.argmin(d)], quad[np.argmax(s)], quad[np.argmax(d)]], np.float32)


def rectify(gray: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The sheet inside corners, mapped to an upright rectangle of its own proportions, its margin dropped."""
    cv2 = _cv2()
    tl, tr, br, bl = corners
    width = max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))
    height = max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))
    width, height = max(16, round(width)), max(16, round(height))
    target = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(corners, target)
    sheet = cv2.warpPerspective(gray.astype(np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR)
    my, mx = round(height * MARGIN), round(width * MARGIN)
    return sheet[my : height - my, mx : width - mx]


def ink_on_paper(paper: np.ndarray, name: str = "image") -> np.ndarray:
    """Ink intensity (h, w) float32 in [0, 1] of dark strokes on a light sheet, ruled and squared lines removed,
    only the digit's parts kept; ImageError when there is no ink."""
    cv2 = _cv2()
    h, w = paper.shape
    g = np.clip(paper, 0, 1).astype(np.float32)
    k = max(5, round(min(h, w) / 5)) | 1  # wider than any pen stroke (a large digit's too), narrower than the light
    background = cv2.morphologyEx(g, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    background = cv2.medianBlur((background * 255).astype(np.uint8), min(k, 255) | 1).astype(np.float32) / 255
    dark = np.clip((background - g) / np.maximum(background, 0.05), 0, 1)
    noise = 1.4826 * float(np.median(np.abs(dark - np.median(dark))))
    level = max(MIN_INK, 5 * noise)
    mask = (dark > level).astype(np.uint8)
    lines = np.zeros_like(mask)
    for size, gap in (((max(8, round(w * LINE)), 1), (7, 1)), ((1, max(8, round(h * LINE))), (1, 7))):
        joined = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones(gap[::-1], np.uint8))  # a faint line's breaks
        lines |= cv2.morphologyEx(joined, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, size))
    if lines.any():  # a pen stroke crossing a line is darker than the line: it stays, and its gap is bridged
        line_dark = float(np.median(dark[lines > 0]))
        stroke = (dark > max(1.6 * line_dark, line_dark + 0.15)).astype(np.uint8)
        removed = cv2.dilate(lines, np.ones((3, 3), np.uint8)) & (1 - stroke)
        mask &= 1 - removed
        bridged = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        mask |= bridged & removed
    rim = max(2, round(RIM * min(h, w)))  # the sheet's rim: what is left of the desk, the edge's shadow
    mask[:rim], mask[-rim:], mask[:, :rim], mask[:, -rim:] = 0, 0, 0, 0
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA] if count > 1 else np.zeros(0)
    widths, heights = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    sliver = (np.minimum(widths, heights) <= 3) & (np.maximum(widths, heights) >= 5 * np.minimum(widths, heights))
    big = np.maximum(widths, heights) >= MIN_DIGIT * min(h, w)
    keep = np.flatnonzero((areas >= max(4, MIN_PART * h * w)) & ~sliver) + 1  # no specks, no bits of ruling
    keep = keep[big[keep - 1]] if big[keep - 1].any() else keep[:0]
    if keep.size:
        darkness = np.array([float(np.median(dark[labels == i])) for i in keep])
        keep = keep[darkness >= MIN_STROKE]  # a shadow's edge is only a little darker than the paper
    if keep.size:  # a pen or pencil leaves a sharp edge; a shadow's edge is soft
        gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8, cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8
        edge = (mask > 0) & (cv2.erode(mask, np.ones((3, 3), np.uint8)) == 0)
        sums = np.bincount(labels[edge], weights=np.hypot(gx, gy)[edge], minlength=count)
        sharp = sums / np.maximum(np.bincount(labels[edge], minlength=count), 1)
        keep = keep[sharp[keep] >= SHARP]
    if keep.size:  # a stroke is narrow for its length; a patch of shadow is not
        inside = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
        widest = np.zeros(count)
        np.maximum.at(widest, labels.ravel(), inside.ravel())
        span = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
        keep = keep[2 * widest[keep] <= STROKE_SHARE * span[keep]]
    if keep.size == 0:
        raise ImageError(f"{name}: no ink found on the sheet (blank paper, or strokes too faint to tell apart)")
    main = keep[np.argmax(stats[keep, cv2.CC_STAT_AREA])]
    x, y, bw, bh = stats[main, :4]
    grow = 0.6 * max(bw, bh)  # the digit's other parts (a broken pencil stroke, a 5's cap) lie close by
    near = [
        i
        for i in keep
        if stats[i, 0] < x + bw + grow
        and stats[i, 0] + stats[i, 2] > x - grow
        and stats[i, 1] < y + bh + grow
        and stats[i, 1] + stats[i, 3] > y - grow
    ]
    strength = float(np.median(dark[labels == main]))
    near = [i for i in near if float(np.median(dark[labels == i])) >= 0.5 * strength]  # the same pen, not a rule
    digit = np.isin(labels, near).astype(np.uint8)
    digit = cv2.morphologyEx(digit, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0  # a pencil's grainy breaks
    ink = np.where(digit, dark, 0).astype(np.float32)
    peak = float(np.percentile(ink[digit], 90))
    return np.clip(ink / max(peak, 1e-6), 0, 1)
