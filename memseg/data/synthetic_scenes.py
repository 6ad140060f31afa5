"""The 15 procedural categories of the synthetic data set: how a normal sample looks and how each
of its defect types changes it.

A scene renders one normal sample from parameters drawn once (pose, colours, noise fields), and
can re-render the same sample with a part changed (a missing wire, a bent leg), so a defect is
either a re-rendering or a geometric edit of the normal image (strokes, polygons, ellipses,
local displacements, colour shifts). synthetic.py turns (normal, defect) into the image and its
exact mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from memseg.data.synthetic_draw import (
    Array,
    blob_points,
    bump_warp,
    coverage,
    crack_points,
    curve_points,
    edge_of,
    ellipse_region,
    fractal_noise,
    from_local,
    grid,
    jitter_colour,
    paint,
    polygon_region,
    random_point_in,
    sd_box,
    sd_circle,
    shade,
    smooth_noise,
    standardise,
    streaks,
    stroke_region,
    to_local,
    worley,
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


def _size(scene: Scene) -> int:
    return scene.image.shape[0]


def _site(scene: Scene, rng: Rng, margin_px: int = 2) -> tuple[float, float]:
    """A random point well inside the foreground."""
    inner = ndimage.binary_erosion(scene.fg, iterations=margin_px) if margin_px else scene.fg
    return random_point_in(rng, inner if inner.any() else scene.fg)


def _px(scene: Scene, fraction: float, minimum: float = 1.0) -> float:
    """A width in pixels: `fraction` of the image size, at least `minimum`."""
    return max(minimum, fraction * _size(scene))


def _pick(rng: Rng, options: list[Any]) -> Any:
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
    size = _size(scene)
    cx, cy = _site(scene, rng)
    region = polygon_region(size, blob_points(rng, cx, cy, rng.uniform(*radius), rng.uniform(1.0, 1.8))) & scene.fg
    colour = jitter_colour(rng, _pick(rng, colours), 0.04)
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
    region = stroke_region(_size(scene), points, width_px) & scene.fg
    if colour is None:
        defect = scene.image * factor
    else:
        defect = np.broadcast_to(np.asarray(colour, dtype=np.float32), scene.image.shape)
    return np.where(region[:, :, None], defect, scene.image).astype(np.float32), region


def crack(scene: Scene, rng: Rng, length: tuple[float, float], width: float = 0.024) -> tuple[Array, Array]:
    """A dark jagged crack with one branch."""
    main = crack_points(rng, _site(scene, rng), rng.uniform(*length), segments=9, wiggle=0.45)
    branch = crack_points(rng, tuple(main[len(main) // 2]), rng.uniform(*length) * 0.45, segments=4)
    width_px = _px(scene, width)
    image, region = line_mark(scene, rng, main, width_px, None, factor=rng.uniform(0.15, 0.35))
    scene_b = Scene(image, scene.fg, scene.render, scene.anchors)
    image, region_b = line_mark(scene_b, rng, branch, max(1.0, width_px * 0.7), None, factor=0.3)
    return image, region | region_b


def hole(scene: Scene, rng: Rng, radius: tuple[float, float], inside: tuple[float, float, float]) -> tuple[Array, Array]:
    """A round hole: dark inside, darkest at the centre, with a lighter bevelled rim."""
    size = _size(scene)
    cx, cy = _site(scene, rng, margin_px=3)
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
    region = polygon_region(_size(scene), blob_points(rng, site[0], site[1], radius, rng.uniform(1.0, 1.6))) & scene.fg
    defect = np.where(region[:, :, None], behind, scene.image)
    fracture = edge_of(region) & scene.fg
    defect = np.where(fracture[:, :, None], np.clip(scene.image * 1.6 + 0.2, 0, 1), defect)
    return defect.astype(np.float32), region


def particle(scene: Scene, rng: Rng, radius: tuple[float, float], colours: list[tuple[float, float, float]]) -> tuple[Array, Array]:
    """A foreign particle: an opaque irregular blob with its own speckled texture, often with a
    fibre trailing from it."""
    size = _size(scene)
    cx, cy = _site(scene, rng)
    region = polygon_region(size, blob_points(rng, cx, cy, rng.uniform(*radius), rng.uniform(1.0, 2.2)))
    if rng.random() < 0.6:
        region |= stroke_region(size, curve_points(rng, (cx, cy), rng.uniform(0.15, 0.35), 3.0), _px(scene, 0.012))
    region &= scene.fg
    speckle = 0.75 + 0.5 * smooth_noise(rng, size, max(4, size // 6))
    layer = shade(jitter_colour(rng, _pick(rng, colours), 0.05), speckle)
    return np.where(region[:, :, None], np.clip(layer, 0, 1), scene.image).astype(np.float32), region


def displaced(scene: Scene, rng: Rng, site: tuple[float, float], radius: float, shift: float, direction: float | None = None) -> tuple[Array, Array]:
    """Content around `site` pushed by `shift` (bent, squeezed, pushed apart)."""
    angle = rng.uniform(0, 2 * np.pi) if direction is None else direction
    return bump_warp(scene.image, site[0], site[1], radius, (shift * np.cos(angle), shift * np.sin(angle)))


def _finish(image: Array) -> Array:
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _all(size: int) -> Array:
    return np.ones((size, size), dtype=bool)


def _grey(value: Array) -> Array:
    return np.repeat(np.clip(value, 0, 1)[:, :, None], 3, axis=2).astype(np.float32)


# --- seven-segment print (capsule "500", pill "FF") -----------------------------------------

_SEGMENTS = {  # centre (u, v) in digit-box units and whether the bar is horizontal
    "a": (0.0, -0.5, True), "b": (0.5, -0.25, False), "c": (0.5, 0.25, False),
    "d": (0.0, 0.5, True), "e": (-0.5, 0.25, False), "f": (-0.5, -0.25, False), "g": (0.0, 0.0, True),
}
_GLYPHS = {"0": "abcdef", "5": "afgcd", "F": "aefg"}


def print_sdf(u: Array, v: Array, text: str, start: float, width: float, height: float, thick: float,
              drop: frozenset[tuple[int, str]] = frozenset()) -> Array:
    """Signed distance to seven-segment `text` laid along u from `start`; `drop` removes
    (character index, segment) pairs, which is how a faulty imprint is drawn."""
    sdf = np.full(u.shape, np.inf, dtype=np.float32)
    for i, char in enumerate(text):
        origin = start + i * width * 1.7
        for seg in _GLYPHS[char]:
            if (i, seg) in drop:
                continue
            su, sv, horizontal = _SEGMENTS[seg]
            half = (width / 2, thick / 2) if horizontal else (thick / 2, height / 4)
            sdf = np.minimum(sdf, sd_box(u - (origin + su * width), v - sv * height, *half, radius=thick / 2))
    return sdf


# --- textures -------------------------------------------------------------------------------


def carpet(rng: Rng, size: int) -> Scene:
    """Woven pile: basket-weave tufts whose fibres alternate direction, with colour drift."""
    x, y = grid(size)
    base = jitter_colour(rng, (0.5, 0.43, 0.36), 0.015)
    u, v = to_local(x, y, rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-0.05, 0.05))
    cell = rng.uniform(0.15, 0.17)
    fu, fv = u / cell - np.floor(u / cell), v / cell - np.floor(v / cell)
    vertical = (np.floor(u / cell) + np.floor(v / cell)) % 2 == 0
    fibre_len = max(3, size // 20)
    fibres = np.where(vertical, streaks(rng, size, fibre_len, 0), streaks(rng, size, fibre_len, 1))
    ridge = np.where(vertical, np.sin(np.pi * fu), np.sin(np.pi * fv))
    value = 0.62 + 0.3 * ridge + 0.08 * fibres + 0.05 * fractal_noise(rng, size, 3, octaves=2)
    image = _finish(shade(base, value))
    return Scene(image, _all(size), lambda: image, {})


def _carpet_cut(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    points = curve_points(rng, _site(scene, rng), rng.uniform(0.4, 0.65), 0.6)
    return line_mark(scene, rng, points, _px(scene, 0.036, 2), None, factor=rng.uniform(0.15, 0.3))


def _carpet_thread(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    colour = _pick(rng, [(0.92, 0.9, 0.85), (0.85, 0.2, 0.15), (0.2, 0.35, 0.8), (0.08, 0.08, 0.08)])
    points = curve_points(rng, _site(scene, rng), rng.uniform(0.5, 0.9), 3.0)
    return line_mark(scene, rng, points, _px(scene, 0.02, 1.5), colour)


def grid_mesh(rng: Rng, size: int) -> Scene:
    """A woven wire mesh over a dark background; render(wires=False) draws the background only."""
    x, y = grid(size)
    angle = rng.uniform(-0.06, 0.06)
    period = rng.uniform(0.19, 0.21)
    phase = rng.uniform(0, period, 2)
    warp_u, warp_v = (0.012 * fractal_noise(rng, size, 3, octaves=2) for _ in range(2))
    background = 0.14 + 0.03 * fractal_noise(rng, size, 6, octaves=3)
    wire_level = rng.uniform(0.62, 0.72)
    half = 0.028
    pixel = 2.0 / size

    def render(wires: bool = True) -> Array:
        if not wires:
            return _grey(background)
        u, v = to_local(x, y, 0.0, 0.0, angle)
        u, v = u + warp_u + phase[0], v + warp_v + phase[1]
        du = np.mod(u, period) - period / 2  # distance across a vertical wire
        dv = np.mod(v, period) - period / 2
        alpha_v = np.clip((half - np.abs(du)) / pixel + 0.5, 0, 1)
        alpha_h = np.clip((half - np.abs(dv)) / pixel + 0.5, 0, 1)
        lum_v = wire_level * (0.55 + 0.45 * np.clip(1 - (du / half) ** 2, 0, 1))
        lum_h = wire_level * (0.55 + 0.45 * np.clip(1 - (dv / half) ** 2, 0, 1))
        v_on_top = (np.floor(u / period) + np.floor(v / period)) % 2 == 0
        h_then_v = (background * (1 - alpha_h) + lum_h * alpha_h) * (1 - alpha_v) + lum_v * alpha_v
        v_then_h = (background * (1 - alpha_v) + lum_v * alpha_v) * (1 - alpha_h) + lum_h * alpha_h
        return _grey(np.where(v_on_top, h_then_v, v_then_h))

    image = render()
    return Scene(image, _all(size), render, {"period": period})


def _grid_broken(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    size = _size(scene)
    cx, cy = _site(scene, rng)
    r = scene.anchors["period"] * rng.uniform(0.8, 1.1)
    region = ellipse_region(size, cx, cy, r, r * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi))
    return np.where(region[:, :, None], scene.render(wires=False), scene.image).astype(np.float32), region


def _grid_bent(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    period = scene.anchors["period"]
    return displaced(scene, rng, _site(scene, rng), rng.uniform(0.9, 1.3) * period, rng.uniform(0.35, 0.55) * period)


def _grid_glue(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return stain(scene, rng, (0.1, 0.17), [(0.6, 0.6, 0.6), (0.75, 0.75, 0.75)], alpha=(0.6, 0.8), keep_texture=False)


def leather(rng: Rng, size: int) -> Scene:
    """Grained hide: cells with grooves between them, slow colour drift."""
    base = jitter_colour(rng, (0.56, 0.3, 0.18), 0.03)
    f1, f2 = worley(rng, size, int(rng.uniform(330, 420)))
    groove = 1.0 - np.exp(-(((f2 - f1) / 0.022) ** 2))
    fine = standardise(rng.random((size, size), dtype=np.float32))
    value = 0.68 + 0.25 * groove + 0.05 * fractal_noise(rng, size, 4, octaves=3) + 0.025 * fine
    image = _finish(shade(base, value))
    return Scene(image, _all(size), lambda: image, {})


def _leather_cut(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    points = curve_points(rng, _site(scene, rng), rng.uniform(0.4, 0.6), 0.8)
    return line_mark(scene, rng, points, _px(scene, 0.032, 2), None, factor=rng.uniform(0.15, 0.3))


def tile(rng: Rng, size: int) -> Scene:
    """Terrazzo slabs: light speckled stone with dark grains, grout lines between slabs."""
    x, y = grid(size)
    u, v = to_local(x, y, 0.0, 0.0, rng.uniform(-0.02, 0.02))
    slab = rng.uniform(0.9, 1.1)
    u, v = u + rng.uniform(0, slab), v + rng.uniform(0, slab)
    tones = rng.uniform(-1, 1, (4, 4))
    iu, iv = np.floor(u / slab).astype(int) % 4, np.floor(v / slab).astype(int) % 4
    base = jitter_colour(rng, (0.8, 0.79, 0.76), 0.01)
    value = 0.93 + 0.04 * tones[iv, iu] + 0.03 * fractal_noise(rng, size, 5, octaves=2)
    image = shade(base, value)
    grains = fractal_noise(rng, size, max(8, size // 5), octaves=2)
    image = paint(image, jitter_colour(rng, (0.35, 0.32, 0.3), 0.04), np.clip((grains - 1.2) * 3, 0, 1))
    rust = fractal_noise(rng, size, max(8, size // 6), octaves=1)
    image = paint(image, (0.55, 0.4, 0.3), np.clip((rust - 1.8) * 3, 0, 1) * 0.8)
    gu = np.abs(np.mod(u, slab) - slab / 2)
    gv = np.abs(np.mod(v, slab) - slab / 2)
    grout = coverage(slab / 2 - 0.02 - np.maximum(gu, gv), size)  # 1 on the grout lines
    image = _finish(paint(image, (0.42, 0.41, 0.4), grout))
    return Scene(image, _all(size), lambda: image, {})


def _tile_gray_stroke(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    points = curve_points(rng, _site(scene, rng), rng.uniform(0.3, 0.55), 1.0)
    grey = rng.uniform(0.35, 0.5)
    return line_mark(scene, rng, points, _px(scene, rng.uniform(0.035, 0.055), 2), (grey, grey, grey * 1.02))


def wood(rng: Rng, size: int) -> Scene:
    """Planed wood: growth rings of a far-away centre (almost vertical stripes), fibres along."""
    x, y = grid(size)
    cx = _pick(rng, [-1.0, 1.0]) * rng.uniform(2.5, 5.0)
    cy = rng.uniform(-3.0, 3.0)
    r = np.hypot(x - cx, y - cy) + 0.035 * fractal_noise(rng, size, 3, octaves=3)
    ring = (0.5 + 0.5 * np.sin(2 * np.pi * r / rng.uniform(0.08, 0.11))) ** 3
    fibres = streaks(rng, size, max(4, size // 5), axis=0)
    value = 0.88 - 0.24 * ring + 0.04 * fibres + 0.04 * fractal_noise(rng, size, 2, octaves=2)
    image = _finish(shade(jitter_colour(rng, (0.72, 0.52, 0.34), 0.03), value))
    return Scene(image, _all(size), lambda: image, {})


def _wood_scratch(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    points = curve_points(rng, _site(scene, rng), rng.uniform(0.5, 0.9), 0.4)
    bright = np.clip(scene.image + (1 - scene.image) * rng.uniform(0.55, 0.75), 0, 1)
    region = stroke_region(_size(scene), points, _px(scene, 0.024, 2))
    return np.where(region[:, :, None], bright, scene.image).astype(np.float32), region


def _wood_liquid(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    size = _size(scene)
    cx, cy = _site(scene, rng)
    region = polygon_region(size, blob_points(rng, cx, cy, rng.uniform(0.13, 0.24), rng.uniform(1.0, 1.6)))
    wet = scene.image * rng.uniform(0.45, 0.6)
    wet = np.where(edge_of(region)[:, :, None], scene.image * 0.35, wet)  # a darker drying edge
    return np.where(region[:, :, None], wet, scene.image).astype(np.float32), region


# --- objects --------------------------------------------------------------------------------


def _backdrop(rng: Rng, size: int, level: float, spread: float = 0.02) -> Array:
    """A plain background: `level` grey, with a faint vignette and blotches."""
    x, y = grid(size)
    vignette = 1.0 - 0.06 * (x**2 + y**2)
    return _grey(level * vignette + spread * fractal_noise(rng, size, 4, octaves=2))


def bottle(rng: Rng, size: int) -> Scene:
    """A brown glass bottle seen from above: shoulder, lighter lip, dark opening, highlight."""
    x, y = grid(size)
    cx, cy = rng.uniform(-0.04, 0.04, 2)
    r = np.hypot(x - cx, y - cy)
    theta = np.arctan2(y - cy, x - cx)
    outer = rng.uniform(0.74, 0.8)
    lip_out, lip_in = rng.uniform(0.44, 0.47), rng.uniform(0.36, 0.39)
    glass = jitter_colour(rng, (0.42, 0.27, 0.12), 0.03)
    light = rng.uniform(-np.pi, np.pi)
    image = _backdrop(rng, size, 0.86)
    shoulder = 0.55 + 0.35 * np.clip((r - lip_out) / (outer - lip_out), 0, 1)
    shoulder += 0.45 * np.exp(-(((np.angle(np.exp(1j * (theta - light)))) / 0.5) ** 2) - ((r - 0.62) / 0.06) ** 2)
    image = paint(image, shade(glass, shoulder), coverage(r - outer, size))
    lip = 0.9 + 0.35 * np.cos(np.pi * (r - (lip_in + lip_out) / 2) / (lip_out - lip_in))
    image = paint(image, shade(glass * 1.35, lip), coverage(np.abs(r - (lip_in + lip_out) / 2) - (lip_out - lip_in) / 2, size))
    opening = 0.07 + 0.12 * (r / lip_in) ** 2
    image = paint(image, _grey(opening), coverage(r - lip_in, size))
    image = _finish(image)
    fg = r < outer
    return Scene(image, fg, lambda: image, {"centre": (cx, cy), "lip": (lip_in + lip_out) / 2, "opening": lip_in})


def _bottle_broken(scene: Scene, rng: Rng, radius: tuple[float, float]) -> tuple[Array, Array]:
    cx, cy = scene.anchors["centre"]
    angle = rng.uniform(0, 2 * np.pi)
    dist = scene.anchors["lip"] + rng.uniform(-0.03, 0.12)
    site = (cx + dist * np.cos(angle), cy + dist * np.sin(angle))
    behind = np.broadcast_to(np.float32(rng.uniform(0.05, 0.12)), scene.image.shape)
    return chunk_missing(scene, rng, behind, site, rng.uniform(*radius))


def cable(rng: Rng, size: int) -> Scene:
    """A cable cross-section: dark sheath, three insulated copper wires (green, blue, brown).
    render(recolour=(i, j)) gives wire i the colour of wire j; render(no_core=i) empties wire i."""
    x, y = grid(size)
    cx, cy = rng.uniform(-0.04, 0.04, 2)
    turn = rng.uniform(-0.12, 0.12)
    colours = [jitter_colour(rng, c, 0.02) for c in ((0.25, 0.6, 0.3), (0.2, 0.35, 0.75), (0.55, 0.33, 0.15))]
    background = _backdrop(rng, size, 0.8)
    sheath_value = 0.9 + 0.1 * fractal_noise(rng, size, 12, octaves=2)
    sheath_r, ring_r, ins_r, core_r = 0.9, 0.43, 0.3, 0.18
    centres = [(cx + ring_r * np.cos(turn + k * 2 * np.pi / 3 - np.pi / 2), cy + ring_r * np.sin(turn + k * 2 * np.pi / 3 - np.pi / 2)) for k in range(3)]
    strands = 0.8 + 0.2 * np.cos(x * 2 * np.pi / 0.06) * np.cos(y * 2 * np.pi / 0.06)

    def render(recolour: tuple[int, int] | None = None, no_core: int | None = None) -> Array:
        image = paint(background, shade((0.16, 0.16, 0.17), sheath_value), coverage(sd_circle(x, y, cx, cy, sheath_r), size))
        for k, (wx, wy) in enumerate(centres):
            d = np.hypot(x - wx, y - wy)
            colour = colours[recolour[1]] if recolour and recolour[0] == k else colours[k]
            image = paint(image, shade(colour, 0.75 + 0.3 * np.clip(1 - (d / ins_r) ** 2, 0, 1)), coverage(d - ins_r, size))
            core = _grey(0.08 + 0.1 * (d / core_r)) if no_core == k else shade((0.82, 0.54, 0.3), strands)
            image = paint(image, core, coverage(d - core_r, size))
        return _finish(image)

    image = render()
    fg = np.hypot(x - cx, y - cy) < sheath_r
    wires = np.zeros_like(fg)
    for wx, wy in centres:
        wires |= np.hypot(x - wx, y - wy) < ins_r + 0.02
    return Scene(image, fg, render, {"centre": (cx, cy), "sheath": sheath_r, "wires": wires})


def _cable_swap(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    i = int(rng.integers(3))
    j = (i + 1 + int(rng.integers(2))) % 3
    return scene.render(recolour=(i, j)), _all(_size(scene))


def _cable_missing_wire(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return scene.render(no_core=int(rng.integers(3))), _all(_size(scene))


def _cable_cut_outer(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    cx, cy = scene.anchors["centre"]
    angle = rng.uniform(0, 2 * np.pi)
    dist = scene.anchors["sheath"] - rng.uniform(0.02, 0.08)
    site = (cx + dist * np.cos(angle), cy + dist * np.sin(angle))
    exposed = shade(jitter_colour(rng, (0.62, 0.58, 0.5), 0.04), 0.85 + 0.3 * smooth_noise(rng, _size(scene), 16))
    sheath_only = Scene(scene.image, scene.fg & ~scene.anchors["wires"], scene.render, scene.anchors)
    return chunk_missing(sheath_only, rng, exposed, site, rng.uniform(0.12, 0.18))


def capsule(rng: Rng, size: int) -> Scene:
    """A two-colour capsule (dark and orange halves) with a printed '500'.
    render(drop=...) leaves out segments of the print."""
    x, y = grid(size)
    cx, cy = rng.uniform(-0.04, 0.04, 2)
    angle = rng.uniform(-0.05, 0.05)
    half_len, half_h = 0.68, rng.uniform(0.25, 0.27)
    u, v = to_local(x, y, cx, cy, angle)
    background = _backdrop(rng, size, 0.9)
    t = np.clip(v / half_h, -1, 1)
    cylinder = 0.55 + 0.45 * np.sqrt(1 - t**2) + 0.35 * np.exp(-(((t + 0.45) / 0.15) ** 2))
    body = np.where((u < 0)[:, :, None], shade((0.17, 0.16, 0.16), cylinder), shade(jitter_colour(rng, (0.88, 0.5, 0.12), 0.02), cylinder))
    body_sdf = sd_box(u, v, half_len, half_h, radius=half_h)

    def render(drop: frozenset[tuple[int, str]] = frozenset()) -> Array:
        image = paint(background, body, coverage(body_sdf, size))
        image = paint(image, (0.1, 0.08, 0.06), coverage(np.abs(u) - 0.008, size) * coverage(body_sdf, size))
        text = print_sdf(u, v, "500", 0.14, 0.09, 0.17, 0.03, drop)
        return _finish(paint(image, (0.15, 0.1, 0.08), coverage(text, size)))

    image = render()
    return Scene(image, body_sdf < 0, render, {"pose": (cx, cy, angle), "half": (half_len, half_h)})


def _capsule_imprint(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    segments = [(i, s) for i, ch in enumerate("500") for s in _GLYPHS[ch]]
    chosen = rng.choice(len(segments), size=int(rng.integers(3, 7)), replace=False)
    image = scene.render(drop=frozenset(segments[k] for k in chosen))
    cx, cy, angle = scene.anchors["pose"]
    start = from_local(rng.uniform(0.1, 0.45), rng.uniform(-0.1, 0.1), cx, cy, angle)
    smear = stroke_region(_size(scene), curve_points(rng, start, rng.uniform(0.1, 0.2), 1.0), _px(scene, 0.03, 2)) & scene.fg
    image = np.where(smear[:, :, None], np.float32(0.15), image)
    return image.astype(np.float32), _all(_size(scene))


def _capsule_squeeze(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    cx, cy, angle = scene.anchors["pose"]
    half_len, half_h = scene.anchors["half"]
    side = _pick(rng, [-1.0, 1.0])
    site = from_local(rng.uniform(-0.45, 0.45) * half_len, side * half_h, cx, cy, angle)
    inward = angle + (-np.pi / 2 if side > 0 else np.pi / 2)
    return displaced(scene, rng, site, rng.uniform(0.2, 0.28), rng.uniform(0.08, 0.12), direction=inward)


def hazelnut(rng: Rng, size: int) -> Scene:
    """A hazelnut on black, any orientation: pointed tip, striations, pale base scar."""
    x, y = grid(size)
    cx, cy = rng.uniform(-0.05, 0.05, 2)
    u, v = to_local(x, y, cx, cy, rng.uniform(0, 2 * np.pi))
    a, b = rng.uniform(0.58, 0.64), rng.uniform(0.52, 0.56)
    theta = np.arctan2(v, u)
    edge = 1.0 + 0.14 * np.clip(np.cos(theta), 0, 1) ** 6
    rho = np.hypot(u / a, v / b)
    sdf = (rho - edge) * b
    z = np.sqrt(np.clip(1 - (rho / edge) ** 2, 0, 1))
    stripes = np.sin(10 * np.arctan2(v, u + a) + 1.5 * fractal_noise(rng, size, 4, octaves=2))
    value = 0.35 + 0.7 * z**0.6 + 0.1 * stripes + 0.05 * fractal_noise(rng, size, 8, octaves=2)
    nut = shade(jitter_colour(rng, (0.52, 0.31, 0.14), 0.03), value)
    scar = np.clip((-u / a - 0.65 + 0.08 * fractal_noise(rng, size, 5)) * 8, 0, 1)
    nut = paint(nut, shade((0.75, 0.62, 0.46), 0.6 + 0.5 * z), scar)
    image = _finish(paint(_backdrop(rng, size, 0.06, 0.01), nut, coverage(sdf, size)))
    return Scene(image, sdf < 0, lambda: image, {})


def _hazelnut_print(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    colour = _pick(rng, [(0.25, 0.3, 0.85), (0.6, 0.2, 0.7), (0.85, 0.2, 0.2)])
    cx, cy = _site(scene, rng, margin_px=4)
    region = np.zeros_like(scene.fg)
    for k in range(int(rng.integers(3, 6))):  # a few handwritten-looking letters in a row
        start = (cx + 0.1 * k - 0.15, cy + rng.normal(0, 0.02))
        region |= stroke_region(_size(scene), curve_points(rng, start, rng.uniform(0.1, 0.16), 4.0), _px(scene, 0.026, 2))
    region &= scene.fg
    return np.where(region[:, :, None], np.asarray(colour, np.float32), scene.image).astype(np.float32), region


def metal_nut(rng: Rng, size: int) -> Scene:
    """A stamped metal nut on black: disc with four skewed tabs and a central hole, brushed
    highlights. render(bend=(k, angle)) rotates tab k about its root."""
    x, y = grid(size)
    cx, cy = rng.uniform(-0.03, 0.03, 2)
    spin = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(0, np.pi)
    background = _backdrop(rng, size, 0.05, 0.01)
    grain = 0.03 * fractal_noise(rng, size, 24, octaves=1)
    metal = jitter_colour(rng, (0.62, 0.63, 0.66), 0.02)
    r = np.hypot(x - cx, y - cy)
    phi = np.arctan2(y - cy, x - cx)

    def tab_sdf(k: int, extra: float = 0.0) -> Array:
        root_angle = spin + k * np.pi / 2
        root = (cx + 0.35 * np.cos(root_angle), cy + 0.35 * np.sin(root_angle))
        u, v = to_local(x, y, root[0], root[1], root_angle + extra)
        return sd_box(u - 0.22, v - 0.22 * u, 0.24, 0.15, radius=0.06)  # skewed: flipping it shows

    def nut_sdf(bend: tuple[int, float] | None) -> Array:
        sdf = r - 0.5
        for k in range(4):
            sdf = np.minimum(sdf, tab_sdf(k, bend[1] if bend and bend[0] == k else 0.0))
        return np.maximum(sdf, -(r - 0.2))  # the hole

    def render(bend: tuple[int, float] | None = None) -> Array:
        sdf = nut_sdf(bend)
        bevel = np.clip(-sdf / 0.06, 0, 1)
        value = (0.7 + 0.22 * np.cos(2 * (phi - light)) + grain + 0.04 * np.sin(r * 90)) * (0.55 + 0.45 * bevel)
        return _finish(paint(background, shade(metal, value), coverage(sdf, size)))

    image = render()
    return Scene(image, nut_sdf(None) < 0, render, {})


def _metal_nut_bent(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return scene.render(bend=(int(rng.integers(4)), _pick(rng, [-1, 1]) * rng.uniform(0.25, 0.4))), _all(_size(scene))


def _scratch(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    points = curve_points(rng, _site(scene, rng), rng.uniform(0.45, 0.7), 0.5)
    colour = _pick(rng, [(0.95, 0.95, 0.95), (0.12, 0.12, 0.12)])
    return line_mark(scene, rng, points, _px(scene, 0.028, 2), colour)


def pill(rng: Rng, size: int) -> Scene:
    """A white oval pill with red speckles and an 'FF' imprint, on black."""
    x, y = grid(size)
    cx, cy = rng.uniform(-0.04, 0.04, 2)
    u, v = to_local(x, y, cx, cy, rng.uniform(-0.04, 0.04))
    a, b = rng.uniform(0.76, 0.8), rng.uniform(0.4, 0.44)
    rho2 = (u / a) ** 2 + (v / b) ** 2
    sdf = (np.sqrt(rho2) - 1.0) * b
    z = np.sqrt(np.clip(1 - rho2, 0, 1))
    body = shade(jitter_colour(rng, (0.93, 0.9, 0.84), 0.015), 0.72 + 0.28 * z**0.5)
    specks = fractal_noise(rng, size, max(8, size // 5), octaves=1)
    body = paint(body, (0.75, 0.3, 0.25), np.clip((specks - 1.7) * 3, 0, 1) * 0.85)
    body = paint(body, (0.55, 0.4, 0.38), coverage(print_sdf(u, v, "FF", -0.1, 0.1, 0.2, 0.035), size))
    image = _finish(paint(_backdrop(rng, size, 0.08, 0.01), body, coverage(sdf, size)))
    return Scene(image, sdf < 0, lambda: image, {})


def screw(rng: Rng, size: int) -> Scene:
    """A lying screw, any orientation: head, threaded shank, pointed tip.
    render(no_screw=True) is the background; render(tip_bend=angle) bends the tip."""
    x, y = grid(size)
    cx, cy = rng.uniform(-0.08, 0.08, 2)
    spin = rng.uniform(0, 2 * np.pi)
    background = _backdrop(rng, size, 0.82)
    pitch = rng.uniform(0.07, 0.08)
    level = rng.uniform(0.55, 0.62)

    def shank(u: Array, v: Array, tip_bend: float) -> tuple[Array, Array]:
        bent = u > 0.3
        bu, bv = to_local(u, v, 0.3, 0.0, tip_bend)
        u = np.where(bent, bu + 0.3, u)
        v = np.where(bent, bv, v)
        tooth = np.abs(np.mod(u / pitch, 1.0) - 0.5) * 2
        half = (0.085 + 0.02 * tooth) * np.clip((0.74 - u) / 0.3, 0, 1)
        sdf = np.maximum(np.abs(v) - half, np.maximum(-0.52 - u, u - 0.74))
        t = np.clip(v / np.maximum(half, 1e-3), -1, 1)
        value = level * (0.55 + 0.45 * np.sqrt(1 - t**2)) * (0.75 + 0.25 * np.sin(2 * np.pi * (u + 0.35 * v) / pitch))
        return sdf, value

    def render(no_screw: bool = False, tip_bend: float = 0.0) -> Array:
        if no_screw:
            return background
        u, v = to_local(x, y, cx, cy, spin)
        shank_sdf, shank_value = shank(u, v, tip_bend)
        head_sdf = sd_box(u + 0.62, v, 0.11, 0.2, radius=0.05)
        head_value = level * 1.15 * (0.7 + 0.3 * np.cos(np.pi * np.clip(v / 0.2, -1, 1) / 2))
        image = paint(background, _grey(shank_value), coverage(shank_sdf, size))
        return _finish(paint(image, _grey(head_value), coverage(head_sdf, size)))

    image = render()
    u, v = to_local(x, y, cx, cy, spin)
    head = sd_box(u + 0.62, v, 0.11, 0.2, radius=0.05) < 0
    return Scene(image, np.abs(image - background).max(axis=2) > 0.05, render, {"pose": (cx, cy, spin), "head": head})


def _screw_thread_side(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    cx, cy, spin = scene.anchors["pose"]
    site = from_local(rng.uniform(-0.35, 0.35), _pick(rng, [-1, 1]) * 0.1, cx, cy, spin)
    return chunk_missing(scene, rng, scene.render(no_screw=True), site, rng.uniform(0.11, 0.15))


def _screw_front(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return scene.render(tip_bend=_pick(rng, [-1, 1]) * rng.uniform(0.4, 0.7)), _all(_size(scene))


def _screw_head(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    on_head = Scene(scene.image, scene.anchors["head"], scene.render, scene.anchors)
    image, region = scene.image, np.zeros_like(scene.fg)
    for _ in range(int(rng.integers(3, 5))):
        points = curve_points(rng, _site(on_head, rng, margin_px=0), rng.uniform(0.2, 0.35), 0.5)
        image, part = line_mark(Scene(image, on_head.fg, scene.render, {}), rng, points, _px(scene, 0.03, 2), None, 0.3)
        region |= part
    return image, region


def toothbrush(rng: Rng, size: int) -> Scene:
    """A toothbrush head seen from the bristle side: 3 x 9 tufts, white and blue.
    render(missing=frozenset of tuft indices) leaves tufts out."""
    x, y = grid(size)
    cx, cy = rng.uniform(-0.04, 0.04, 2)
    angle = rng.uniform(-0.03, 0.03)
    u, v = to_local(x, y, cx, cy, angle)
    background = _backdrop(rng, size, 0.86)
    head_sdf = sd_box(u, v + 0.05, 0.4, 0.8, radius=0.3)
    handle_sdf = sd_box(u, v - 0.9, 0.16, 0.2, radius=0.08)
    base = paint(background, shade((0.3, 0.32, 0.42), 0.85 + 0.15 * np.clip(1 - (u / 0.4) ** 2, 0, 1)), coverage(np.minimum(head_sdf, handle_sdf), size))
    tufts = [(tu + rng.normal(0, 0.008), tv + rng.normal(0, 0.008)) for tv in np.linspace(-0.68, 0.56, 9) for tu in (-0.23, 0.0, 0.23)]
    colours = [(0.95, 0.95, 0.95) if k % 3 != 1 else (0.3, 0.5, 0.88) for k in range(len(tufts))]
    fibres = 0.1 * fractal_noise(rng, size, max(8, size // 3), octaves=1)
    radius = 0.105

    def render(missing: frozenset[int] = frozenset()) -> Array:
        image = base
        for k, (tu, tv) in enumerate(tufts):
            if k in missing:
                continue
            d = np.hypot(u - tu, v - tv)
            value = 0.7 + 0.3 * np.clip(1 - (d / radius) ** 2, 0, 1) + fibres
            image = paint(image, shade(colours[k], value), coverage(d - radius, size))
        return _finish(image)

    image = render()
    return Scene(image, head_sdf < 0, render, {"tufts": tufts, "pose": (cx, cy, angle)})


def _toothbrush_missing(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    first = int(rng.integers(27))
    step = _pick(rng, [1, 3])  # neighbours in a row or in a column
    missing = frozenset(k for k in range(first, first + step * int(rng.integers(1, 4)), step) if k < 27)
    return scene.render(missing=missing), _all(_size(scene))


def _toothbrush_bent(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    tu, tv = _pick(rng, scene.anchors["tufts"])
    site = from_local(tu, tv, *scene.anchors["pose"])
    return displaced(scene, rng, site, rng.uniform(0.18, 0.24), rng.uniform(0.08, 0.12))


def transistor(rng: Rng, size: int) -> Scene:
    """A through-hole transistor on a board: black body, three legs into solder pads.
    render(bend=(leg, angle), cut=(leg, fraction), no_body=True) change one part."""
    x, y = grid(size)
    board = _backdrop(rng, size, 0.5)
    board = board * np.asarray(jitter_colour(rng, (0.85, 1.0, 0.8), 0.02), np.float32)
    pads = [(-0.24, 0.68), (0.0, 0.68), (0.24, 0.68)]
    for px_, py_ in pads:
        board = paint(board, _grey(np.full(x.shape, 0.62, np.float32)), coverage(sd_circle(x, y, px_, py_, 0.1), size))
        board = paint(board, _grey(np.full(x.shape, 0.15, np.float32)), coverage(sd_circle(x, y, px_, py_, 0.035), size))
    cx, cy = rng.uniform(-0.03, 0.03), rng.uniform(-0.02, 0.02)
    angle = rng.uniform(-0.04, 0.04)
    u, v = to_local(x, y, cx, cy - 0.3, angle)
    body_sdf = sd_box(u, v, 0.4, 0.3, radius=0.07)
    body = shade((0.12, 0.12, 0.13), 0.85 + 0.5 * np.exp(-(((v + 0.1) / 0.08) ** 2)) * np.clip(1 - (u / 0.4) ** 2, 0, 1))

    def leg_sdf(k: int, bend: float, cut: float) -> Array:
        lu, lv = to_local(u, v, (k - 1) * 0.24, 0.3, bend)  # leg k hangs from the body's bottom edge
        length = 0.68 * (1 - cut)
        return sd_box(lu, lv - length / 2, 0.045, length / 2, radius=0.015), lu

    def render(bend: tuple[int, float] | None = None, cut: tuple[int, float] | None = None, no_body: bool = False) -> Array:
        image = board
        for k in range(3):
            sdf, lu = leg_sdf(k, bend[1] if bend and bend[0] == k else 0.0, cut[1] if cut and cut[0] == k else 0.0)
            value = 0.65 + 0.35 * np.clip(1 - (lu / 0.045) ** 2, 0, 1)
            image = paint(image, shade((0.92, 0.9, 0.84), value), coverage(sdf, size))
        if not no_body:
            image = paint(image, body, coverage(body_sdf, size))
        return _finish(image)

    image = render()
    return Scene(image, body_sdf < 0, render, {})


def _transistor_bent(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return scene.render(bend=(int(rng.integers(3)), _pick(rng, [-1, 1]) * rng.uniform(0.3, 0.55))), _all(_size(scene))


def _transistor_cut(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return scene.render(cut=(int(rng.integers(3)), rng.uniform(0.35, 0.75))), _all(_size(scene))


def _transistor_case(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    edge = edge_of(ndimage.binary_erosion(scene.fg, iterations=1))
    return chunk_missing(scene, rng, scene.render(no_body=True), random_point_in(rng, edge), rng.uniform(0.12, 0.18))


def zipper(rng: Rng, size: int) -> Scene:
    """A closed zipper: woven tape on both sides, interlocking teeth down the middle.
    render(missing=frozenset of (side, row)) leaves teeth out."""
    x, y = grid(size)
    cx, angle = rng.uniform(-0.04, 0.04), rng.uniform(-0.03, 0.03)
    u, v = to_local(x, y, cx, 0.0, angle)
    weave = 0.5 + 0.5 * np.sin(x * 2 * np.pi / 0.035) * np.sin(y * 2 * np.pi / 0.035)
    tape = 0.3 + 0.05 * weave + 0.04 * streaks(rng, size, max(3, size // 16), 0) + 0.03 * fractal_noise(rng, size, 4, 2)
    tape = np.where(np.abs(u) < 0.3, tape * 0.75, tape)  # the tape is darker where it is stitched
    channel = np.where(np.abs(u) < 0.22, 0.1, tape)
    pitch = rng.uniform(0.12, 0.135)
    phase = rng.uniform(0, pitch)
    level = rng.uniform(0.72, 0.8)

    def render(missing: frozenset[tuple[int, int]] = frozenset()) -> Array:
        image = channel
        for side, offset in ((-1, 0.0), (1, 0.5)):
            row_pos = (v + phase) / pitch - offset
            row = np.floor(row_pos)
            tv = (row_pos - row - 0.5) * pitch
            tu = u - side * 0.06
            sdf = sd_box(tu, tv, 0.145, pitch * 0.27, radius=0.035)
            present = np.ones_like(sdf, dtype=bool)
            for s, r in missing:
                if s == side:
                    present &= row != r
            value = level * (0.6 + 0.4 * np.clip(1 - (tv / (pitch * 0.27)) ** 2, 0, 1))
            image = np.where(present, image * (1 - coverage(sdf, size)) + value * coverage(sdf, size), image)
        return _grey(image)

    image = render()
    return Scene(image, _all(size), render, {"u": u, "pose": (cx, 0.0, angle)})


def _zipper_broken(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    side = _pick(rng, [-1, 1])
    first = int(rng.integers(-6, 5))
    missing = frozenset((side, first + k) for k in range(int(rng.integers(1, 4))))
    return scene.render(missing=missing), _all(_size(scene))


def _zipper_split(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    cx, cy, angle = scene.anchors["pose"]
    site = from_local(rng.uniform(-0.04, 0.04), rng.uniform(-0.7, 0.7), cx, cy, angle)
    direction = angle + _pick(rng, [0.0, np.pi])  # push the teeth sideways, apart
    return displaced(scene, rng, site, rng.uniform(0.2, 0.26), rng.uniform(0.09, 0.13), direction=direction)


def _zipper_fabric(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    on_fabric = Scene(scene.image, np.abs(scene.anchors["u"]) > 0.36, scene.render, scene.anchors)
    if rng.random() < 0.5:
        return stain(on_fabric, rng, (0.09, 0.14), [(0.75, 0.75, 0.75)], alpha=(0.7, 0.9))
    return hole(on_fabric, rng, (0.08, 0.12), (0.05, 0.05, 0.05))


SPECS: dict[str, CategorySpec] = {
    spec.name: spec
    for spec in (
        CategorySpec("carpet", False, carpet, {
            "color": lambda s, r: stain(s, r, (0.12, 0.2), [(0.75, 0.15, 0.1), (0.15, 0.25, 0.6), (0.1, 0.08, 0.05), (0.85, 0.8, 0.3)]),
            "cut": _carpet_cut,
            "thread": _carpet_thread,
        }),
        CategorySpec("grid", True, grid_mesh, {"broken": _grid_broken, "bent": _grid_bent, "glue": _grid_glue}),
        CategorySpec("leather", False, leather, {
            "color": lambda s, r: stain(s, r, (0.12, 0.2), [(0.85, 0.75, 0.55), (0.1, 0.06, 0.04), (0.3, 0.45, 0.7)]),
            "cut": _leather_cut,
            "poke": lambda s, r: hole(s, r, (0.08, 0.12), (0.12, 0.06, 0.04)),
        }),
        CategorySpec("tile", False, tile, {
            "crack": lambda s, r: crack(s, r, (0.5, 0.85), width=0.026),
            "oil": lambda s, r: stain(s, r, (0.14, 0.24), [(0.3, 0.24, 0.14), (0.2, 0.2, 0.18)], alpha=(0.45, 0.65)),
            "gray_stroke": _tile_gray_stroke,
        }),
        CategorySpec("wood", False, wood, {
            "scratch": _wood_scratch,
            "hole": lambda s, r: hole(s, r, (0.07, 0.12), (0.14, 0.08, 0.04)),
            "liquid": _wood_liquid,
        }),
        CategorySpec("bottle", False, bottle, {
            "broken_large": lambda s, r: _bottle_broken(s, r, (0.13, 0.18)),
            "broken_small": lambda s, r: _bottle_broken(s, r, (0.08, 0.11)),
            "contamination": lambda s, r: particle(s, r, (0.07, 0.11), [(0.8, 0.78, 0.72), (0.25, 0.25, 0.25), (0.6, 0.55, 0.2)]),
        }),
        CategorySpec("cable", False, cable, {
            "cable_swap": _cable_swap,
            "missing_wire": _cable_missing_wire,
            "cut_outer_insulation": _cable_cut_outer,
        }),
        CategorySpec("capsule", False, capsule, {
            "crack": lambda s, r: crack(s, r, (0.35, 0.55), width=0.024),
            "faulty_imprint": _capsule_imprint,
            "squeeze": _capsule_squeeze,
        }),
        CategorySpec("hazelnut", False, hazelnut, {
            "crack": lambda s, r: crack(s, r, (0.45, 0.75), width=0.026),
            "hole": lambda s, r: hole(s, r, (0.07, 0.12), (0.05, 0.04, 0.03)),
            "print": _hazelnut_print,
        }),
        CategorySpec("metal_nut", False, metal_nut, {
            "bent": _metal_nut_bent,
            "color": lambda s, r: stain(s, r, (0.12, 0.2), [(0.85, 0.3, 0.55), (0.25, 0.4, 0.9), (0.85, 0.7, 0.2)]),
            "scratch": _scratch,
        }),
        CategorySpec("pill", False, pill, {
            "color": lambda s, r: stain(s, r, (0.1, 0.18), [(0.85, 0.72, 0.25), (0.55, 0.35, 0.2), (0.85, 0.45, 0.6)]),
            "crack": lambda s, r: crack(s, r, (0.4, 0.6), width=0.024),
            "contamination": lambda s, r: particle(s, r, (0.06, 0.1), [(0.25, 0.2, 0.15), (0.15, 0.15, 0.18)]),
        }),
        CategorySpec("screw", True, screw, {
            "thread_side": _screw_thread_side,
            "manipulated_front": _screw_front,
            "scratch_head": _screw_head,
        }),
        CategorySpec("toothbrush", False, toothbrush, {
            "missing_bristles": _toothbrush_missing,
            "bent_bristles": _toothbrush_bent,
            "contamination": lambda s, r: particle(s, r, (0.06, 0.1), [(0.15, 0.12, 0.1), (0.7, 0.2, 0.15)]),
        }),
        CategorySpec("transistor", False, transistor, {
            "bent_lead": _transistor_bent,
            "cut_lead": _transistor_cut,
            "damaged_case": _transistor_case,
        }),
        CategorySpec("zipper", True, zipper, {
            "broken_teeth": _zipper_broken,
            "split_teeth": _zipper_split,
            "fabric_interior": _zipper_fabric,
        }),
    )
}
