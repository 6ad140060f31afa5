"""What a synthetic sample is (Scene), what a defect is (a function of a Scene), and the defect
appearances several categories share: stains, strokes, cracks, holes, missing chunks, particles
and displacements, each drawn geometrically and clipped to the foreground.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from memseg.data.synthetic.drawing import (
    Array,
    blob_points,
    bump_warp,
    crack_points,
    curve_points,
    edge_of,
    grid,
    jitter_colour,
    paint,
    polygon_region,
    random_point_in,
    shade,
    smooth_noise,
    stroke_region,
    to_local,
)

Rng = np.random.Generator


@dataclass(frozen=True)
class Scene:
    """One normal sample. `image` is (S, S, 3) float32 in [0, 1]; `fg` marks where defects belong
    (the object, or everything for a texture); `render(**change)` draws the same sample with a
    change (each category documents its own); `anchors` are geometry that defects aim at."""

    image: Array
    fg: Array
    render: Callable[..., Array]
    anchors: dict[str, Any]


# A defect draws the sample with the defect and returns (that image, the region it may change).
DefectFn = Callable[[Scene, Rng], tuple[Array, Array]]


@dataclass(frozen=True)
class CategorySpec:
    name: str
    grey: bool  # saved as 8-bit grayscale, as MVTec AD stores grid, screw and zipper
    scene: Callable[[Rng, int], Scene]
    defects: dict[str, DefectFn]


# --- shared defect appearances -------------------------------------------------------------


def size_of(scene: Scene) -> int:
    return scene.image.shape[0]


def site_in(scene: Scene, rng: Rng, margin_px: int = 2) -> tuple[float, float]:
    """A random point well inside the foreground."""
    inner = ndimage.binary_erosion(scene.fg, iterations=margin_px) if margin_px else scene.fg
    return random_point_in(rng, inner if inner.any() else scene.fg)


def px(scene: Scene, fraction: float, minimum: float = 1.0) -> float:
    """A width in pixels: `fraction` of the image size, at least `minimum`."""
    return max(minimum, fraction * size_of(scene))


def pick(rng: Rng, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def stain(
    scene: Scene,
    rng: Rng,
    radius: tuple[float, float],
    colours: list[tuple[float, float, float]],
    alpha: tuple[float, float] = (0.6, 0.85),
    keep_texture: bool = True,
) -> tuple[Array, Array]:
    """A blotch of foreign colour (paint, oil, discolouration) over an irregular blob."""
    size = size_of(scene)
    cx, cy = site_in(scene, rng)
    region = polygon_region(size, blob_points(rng, cx, cy, rng.uniform(*radius), rng.uniform(1.0, 1.8))) & scene.fg
    colour = jitter_colour(rng, pick(rng, colours), 0.04)
    layer = np.broadcast_to(colour, scene.image.shape).astype(np.float32)
    if keep_texture and region.any():
        lum = scene.image.mean(axis=2)
        layer = layer * np.clip(lum / max(float(lum[region].mean()), 1e-3), 0.7, 1.3)[:, :, None]
    return paint(scene.image, np.clip(layer, 0, 1), region * rng.uniform(*alpha)), region


def line_mark(
    scene: Scene, rng: Rng, points: Array, width_px: float, colour: tuple[float, float, float] | None, factor: float = 0.25
) -> tuple[Array, Array]:
    """A stroke along `points`: painted `colour`, or the surface darkened by `factor` when colour
    is None (a crack, a cut), clipped to the foreground."""
    region = stroke_region(size_of(scene), points, width_px) & scene.fg
    if colour is None:
        defect = scene.image * factor
    else:
        defect = np.broadcast_to(np.asarray(colour, dtype=np.float32), scene.image.shape)
    return np.where(region[:, :, None], defect, scene.image).astype(np.float32), region


def crack(scene: Scene, rng: Rng, length: tuple[float, float], width: float = 0.024) -> tuple[Array, Array]:
    """A dark jagged crack with one branch."""
    main = crack_points(rng, site_in(scene, rng), rng.uniform(*length), segments=9, wiggle=0.45)
    branch = crack_points(rng, tuple(main[len(main) // 2]), rng.uniform(*length) * 0.45, segments=4)
    width_px = px(scene, width)
    image, region = line_mark(scene, rng, main, width_px, None, factor=rng.uniform(0.15, 0.35))
    scene_b = Scene(image, scene.fg, scene.render, scene.anchors)
    image, region_b = line_mark(scene_b, rng, branch, max(1.0, width_px * 0.7), None, factor=0.3)
    return image, region | region_b


def hole(scene: Scene, rng: Rng, radius: tuple[float, float], inside: tuple[float, float, float]) -> tuple[Array, Array]:
    """A round hole: dark inside, darkest at the centre, with a lighter bevelled rim."""
    size = size_of(scene)
    cx, cy = site_in(scene, rng, margin_px=3)
    a = rng.uniform(*radius)
    b = a * rng.uniform(0.7, 1.0)
    angle = rng.uniform(0, np.pi)
    x, y = grid(size)
    u, v = to_local(x, y, cx, cy, angle)
    d = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    region = (d <= 1.0) & scene.fg
    depth = (0.35 + 0.65 * np.clip(d, 0, 1) ** 3)[:, :, None]
    defect = np.asarray(inside, dtype=np.float32) * depth
    rim = edge_of(region)
    defect = np.where(rim[:, :, None], np.clip(scene.image * 1.45 + 0.12, 0, 1), defect)
    return np.where(region[:, :, None], defect, scene.image).astype(np.float32), region


def chunk_missing(scene: Scene, rng: Rng, behind: Array, site: tuple[float, float], radius: float) -> tuple[Array, Array]:
    """A piece broken out around `site`: the irregular region shows `behind` (what lies under the
    part), with a bright fracture edge."""
    region = polygon_region(size_of(scene), blob_points(rng, site[0], site[1], radius, rng.uniform(1.0, 1.6))) & scene.fg
    defect = np.where(region[:, :, None], behind, scene.image)
    fracture = edge_of(region) & scene.fg
    defect = np.where(fracture[:, :, None], np.clip(scene.image * 1.6 + 0.2, 0, 1), defect)
    return defect.astype(np.float32), region


def particle(
    scene: Scene, rng: Rng, radius: tuple[float, float], colours: list[tuple[float, float, float]]
) -> tuple[Array, Array]:
    """A foreign particle: an opaque irregular blob with its own speckled texture, often with a
    fibre trailing from it."""
    size = size_of(scene)
    cx, cy = site_in(scene, rng)
    region = polygon_region(size, blob_points(rng, cx, cy, rng.uniform(*radius), rng.uniform(1.0, 2.2)))
    if rng.random() < 0.6:
        region |= stroke_region(size, curve_points(rng, (cx, cy), rng.uniform(0.15, 0.35), 3.0), px(scene, 0.012))
    region &= scene.fg
    speckle = 0.75 + 0.5 * smooth_noise(rng, size, max(4, size // 6))
    layer = shade(jitter_colour(rng, pick(rng, colours), 0.05), speckle)
    return np.where(region[:, :, None], np.clip(layer, 0, 1), scene.image).astype(np.float32), region


def displaced(
    scene: Scene, rng: Rng, site: tuple[float, float], radius: float, shift: float, direction: float | None = None
) -> tuple[Array, Array]:
    """Content around `site` pushed by `shift` (bent, squeezed, pushed apart)."""
    angle = rng.uniform(0, 2 * np.pi) if direction is None else direction
    return bump_warp(scene.image, site[0], site[1], radius, (shift * np.cos(angle), shift * np.sin(angle)))


def finish(image: Array) -> Array:
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def everywhere(size: int) -> Array:
    return np.ones((size, size), dtype=bool)


def grey(value: Array) -> Array:
    return np.repeat(np.clip(value, 0, 1)[:, :, None], 3, axis=2).astype(np.float32)
