"""Drawing primitives of the synthetic data generator: coordinate grids, smooth noise, antialiased
signed-distance shapes, and geometric regions (polygons, blobs, cracks, strokes, warps).

Everything works in normalised coordinates (x right, y down, both in [-1, 1] across the image)
so a scene looks the same at 64 px and at 256 px. Regions for defects are drawn geometrically
(PIL polygons and lines, ellipses, local displacements), never with noise thresholds.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

Array = np.ndarray


def grid(size: int) -> tuple[Array, Array]:
    """Pixel-centre coordinates (x, y), each (size, size) float32 in (-1, 1)."""
    axis = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2.0 - 1.0
    return np.meshgrid(axis, axis, indexing="xy")


def to_local(x: Array, y: Array, cx: float, cy: float, angle: float) -> tuple[Array, Array]:
    """Coordinates in a frame centred at (cx, cy) and rotated by `angle` radians."""
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = x - cx, y - cy
    return c * dx + s * dy, -s * dx + c * dy


def from_local(u: float, v: float, cx: float, cy: float, angle: float) -> tuple[float, float]:
    """Inverse of `to_local` for one point."""
    c, s = np.cos(angle), np.sin(angle)
    return cx + c * u - s * v, cy + s * u + c * v


def coverage(sdf: Array, size: int) -> Array:
    """Antialiased inside-ness of a signed distance field (negative inside), in [0, 1]."""
    pixel = 2.0 / size
    return np.clip(0.5 - sdf / pixel, 0.0, 1.0)


def sd_circle(x: Array, y: Array, cx: float, cy: float, r: float) -> Array:
    return np.hypot(x - cx, y - cy) - r


def sd_box(u: Array, v: Array, half_w: float, half_h: float, radius: float = 0.0) -> Array:
    """Signed distance to a box centred at the origin of (u, v), corners rounded by `radius`."""
    qx = np.abs(u) - (half_w - radius)
    qy = np.abs(v) - (half_h - radius)
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    inside = np.minimum(np.maximum(qx, qy), 0.0)
    return outside + inside - radius


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> Array:
    """Smooth random field: a (cells x cells) grid of uniform values, bicubic-upsampled to size."""
    coarse = rng.random((cells, cells), dtype=np.float32)
    if cells == size:
        return coarse
    return np.asarray(Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BICUBIC))


def fractal_noise(rng: np.random.Generator, size: int, cells: int, octaves: int = 4, persistence: float = 0.5) -> Array:
    """Sum of smooth noise octaves (cells, 2 cells, ...), standardised to mean 0, std 1."""
    total = np.zeros((size, size), dtype=np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        total += amplitude * smooth_noise(rng, size, min(size, cells * 2**octave))
        amplitude *= persistence
    return standardise(total)


def standardise(field: Array) -> Array:
    std = float(field.std())
    return ((field - field.mean()) / (std if std > 1e-8 else 1.0)).astype(np.float32)


def streaks(rng: np.random.Generator, size: int, length: int, axis: int) -> Array:
    """Fibre-like streaks: white noise averaged along one axis, standardised."""
    noise = rng.random((size, size), dtype=np.float32)
    return standardise(ndimage.uniform_filter1d(noise, size=max(2, length), axis=axis, mode="wrap"))


def worley(rng: np.random.Generator, size: int, n_points: int) -> tuple[Array, Array]:
    """Distances (f1, f2) from each pixel to its nearest and second-nearest random feature point,
    in normalised units: cells (f2 - f1 small at cell borders) for leather grain."""
    from scipy.spatial import cKDTree  # start-up time: scipy.spatial is slow to import, and only this function needs it

    points = rng.uniform(-1.1, 1.1, size=(n_points, 2))
    x, y = grid(size)
    dist, _ = cKDTree(points).query(np.stack([x.ravel(), y.ravel()], axis=1), k=2)
    return dist[:, 0].reshape(size, size).astype(np.float32), dist[:, 1].reshape(size, size).astype(np.float32)


def shade(colour: tuple[float, float, float] | Array, value: Array) -> Array:
    """(S, S, 3) image: `colour` times a per-pixel brightness `value`."""
    return np.asarray(colour, dtype=np.float32)[None, None, :] * value[:, :, None]


def paint(canvas: Array, layer: Array | tuple[float, float, float], alpha: Array) -> Array:
    """Composite `layer` ((S, S, 3) or a colour) over `canvas` with per-pixel `alpha` in [0, 1]."""
    layer = np.asarray(layer, dtype=np.float32)
    if layer.ndim == 1:
        layer = layer[None, None, :]
    return canvas * (1.0 - alpha[:, :, None]) + layer * alpha[:, :, None]


def jitter_colour(rng: np.random.Generator, colour: tuple[float, float, float], amount: float) -> Array:
    """`colour` with each channel moved by up to `amount`, and its brightness by up to 2x that."""
    rgb = np.asarray(colour, dtype=np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32)
    return np.clip(rgb * (1.0 + rng.uniform(-2 * amount, 2 * amount)), 0.0, 1.0).astype(np.float32)


# --- geometric regions (bool masks) -------------------------------------------------------


def _px(size: int, points: Array) -> list[tuple[float, float]]:
    """Normalised (x, y) points -> PIL pixel coordinates."""
    pts = (np.asarray(points, dtype=np.float64) + 1.0) * 0.5 * size - 0.5
    return [(float(a), float(b)) for a, b in pts]


def polygon_region(size: int, points: Array) -> Array:
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon(_px(size, points), fill=255)
    return np.asarray(canvas) > 0


def stroke_region(size: int, points: Array, width_px: float) -> Array:
    """A polyline of `width_px` pixels with round joints and ends."""
    width = max(1, round(width_px))
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    pts = _px(size, points)
    draw.line(pts, fill=255, width=width, joint="curve")
    if width > 2:
        r = width / 2.0
        for a, b in (pts[0], pts[-1]):
            draw.ellipse((a - r, b - r, a + r, b + r), fill=255)
    return np.asarray(canvas) > 0


def ellipse_region(size: int, cx: float, cy: float, a: float, b: float, angle: float = 0.0) -> Array:
    x, y = grid(size)
    u, v = to_local(x, y, cx, cy, angle)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def blob_points(rng: np.random.Generator, cx: float, cy: float, radius: float, elongation: float = 1.0) -> Array:
    """An irregular closed outline: a circle whose radius varies by a few low harmonics, stretched
    and rotated. Geometric, so the defect shapes differ from the Perlin masks used in training."""
    theta = np.linspace(0.0, 2 * np.pi, 48, endpoint=False)
    r = np.ones_like(theta)
    for k in (2, 3, 5):
        r += rng.uniform(0.05, 0.22) / (k / 2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    angle = rng.uniform(0, 2 * np.pi)
    u = radius * elongation * r * np.cos(theta)
    v = radius / elongation * r * np.sin(theta)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([cx + c * u - s * v, cy + s * u + c * v], axis=1)


def crack_points(
    rng: np.random.Generator, start: tuple[float, float], length: float, segments: int = 8, wiggle: float = 0.5
) -> Array:
    """A jagged polyline of total `length` from `start`, its heading drifting randomly."""
    heading = rng.uniform(0, 2 * np.pi)
    points = [np.asarray(start, dtype=np.float64)]
    step = length / segments
    for _ in range(segments):
        heading += rng.normal(0.0, wiggle)
        points.append(points[-1] + step * rng.uniform(0.6, 1.4) * np.array([np.cos(heading), np.sin(heading)]))
    return np.stack(points)


def curve_points(rng: np.random.Generator, start: tuple[float, float], length: float, bend: float) -> Array:
    """A smooth arc-like polyline (a loose thread, a scratch): constant-ish curvature."""
    heading = rng.uniform(0, 2 * np.pi)
    curvature = rng.uniform(-bend, bend)
    points = [np.asarray(start, dtype=np.float64)]
    for _ in range(16):
        heading += curvature / 16 + rng.normal(0.0, 0.05)
        points.append(points[-1] + (length / 16) * np.array([np.cos(heading), np.sin(heading)]))
    return np.stack(points)


def edge_of(region: Array) -> Array:
    """The one-pixel inner border of a bool region."""
    return region & ~ndimage.binary_erosion(region)


def bump_warp(image: Array, cx: float, cy: float, radius: float, shift: tuple[float, float]) -> tuple[Array, Array]:
    """Displace the content around (cx, cy) by `shift` (normalised units), fading to zero at
    `radius`: a bent wire, a squeezed end, pushed-apart teeth. Returns (warped image, support)."""
    size = image.shape[0]
    x, y = grid(size)
    d2 = ((x - cx) ** 2 + (y - cy) ** 2) / radius**2
    weight = np.clip(1.0 - d2, 0.0, 1.0) ** 2
    # Sample the source at the position the content came from (pixels, row/column order).
    src_x = (x - shift[0] * weight + 1.0) * 0.5 * size - 0.5
    src_y = (y - shift[1] * weight + 1.0) * 0.5 * size - 0.5
    channels = [ndimage.map_coordinates(image[:, :, c], [src_y, src_x], order=1, mode="nearest") for c in range(3)]
    return np.stack(channels, axis=2).astype(np.float32), d2 < 1.0


def random_point_in(rng: np.random.Generator, region: Array) -> tuple[float, float]:
    """A random pixel centre inside a bool region, in normalised coordinates."""
    index = rng.choice(np.flatnonzero(region))
    size = region.shape[0]
    row, col = divmod(int(index), size)
    return (col + 0.5) / size * 2 - 1, (row + 0.5) / size * 2 - 1


# --- seven-segment print (capsule "500", pill "FF") -----------------------------------------

SEGMENTS = {  # centre (u, v) in digit-box units and whether the bar is horizontal
    "a": (0.0, -0.5, True),
    "b": (0.5, -0.25, False),
    "c": (0.5, 0.25, False),
    "d": (0.0, 0.5, True),
    "e": (-0.5, 0.25, False),
    "f": (-0.5, -0.25, False),
    "g": (0.0, 0.0, True),
}
GLYPHS = {"0": "abcdef", "5": "afgcd", "F": "aefg"}


def print_sdf(
    u: Array,
    v: Array,
    text: str,
    start: float,
    width: float,
    height: float,
    thick: float,
    drop: frozenset[tuple[int, str]] = frozenset(),
) -> Array:
    """Signed distance to seven-segment `text` laid along u from `start`; `drop` removes
    (character index, segment) pairs, which is how a faulty imprint is drawn."""
    sdf = np.full(u.shape, np.inf, dtype=np.float32)
    for i, char in enumerate(text):
        origin = start + i * width * 1.7
        for seg in GLYPHS[char]:
            if (i, seg) in drop:
                continue
            su, sv, horizontal = SEGMENTS[seg]
            half = (width / 2, thick / 2) if horizontal else (thick / 2, height / 4)
            sdf = np.minimum(sdf, sd_box(u - (origin + su * width), v - sv * height, *half, radius=thick / 2))
    return sdf
