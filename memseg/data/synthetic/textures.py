"""The five texture categories of the synthetic data set (carpet, grid, leather, tile, wood): how a
normal sample looks and how each defect type changes it.
"""

from __future__ import annotations

import numpy as np

from memseg.data.synthetic.defects import (
    CategorySpec,
    Rng,
    Scene,
    crack,
    displaced,
    everywhere,
    finish,
    grey,
    hole,
    line_mark,
    pick,
    px,
    site_in,
    size_of,
    stain,
)
from memseg.data.synthetic.drawing import (
    Array,
    blob_points,
    coverage,
    curve_points,
    edge_of,
    ellipse_region,
    fractal_noise,
    grid,
    jitter_colour,
    paint,
    polygon_region,
    shade,
    standardise,
    streaks,
    stroke_region,
    to_local,
    worley,
)


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
    image = finish(shade(base, value))
    return Scene(image, everywhere(size), lambda: image, {})


def _carpet_cut(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    points = curve_points(rng, site_in(scene, rng), rng.uniform(0.4, 0.65), 0.6)
    return line_mark(scene, rng, points, px(scene, 0.036, 2), None, factor=rng.uniform(0.15, 0.3))


def _carpet_thread(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    colour = pick(rng, [(0.92, 0.9, 0.85), (0.85, 0.2, 0.15), (0.2, 0.35, 0.8), (0.08, 0.08, 0.08)])
    points = curve_points(rng, site_in(scene, rng), rng.uniform(0.5, 0.9), 3.0)
    return line_mark(scene, rng, points, px(scene, 0.02, 1.5), colour)


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
            return grey(background)
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
        return grey(np.where(v_on_top, h_then_v, v_then_h))

    image = render()
    return Scene(image, everywhere(size), render, {"period": period})


def _grid_broken(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    size = size_of(scene)
    cx, cy = site_in(scene, rng)
    r = scene.anchors["period"] * rng.uniform(0.8, 1.1)
    region = ellipse_region(size, cx, cy, r, r * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi))
    return np.where(region[:, :, None], scene.render(wires=False), scene.image).astype(np.float32), region


def _grid_bent(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    period = scene.anchors["period"]
    return displaced(scene, rng, site_in(scene, rng), rng.uniform(0.9, 1.3) * period, rng.uniform(0.35, 0.55) * period)


def _grid_glue(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return stain(scene, rng, (0.1, 0.17), [(0.6, 0.6, 0.6), (0.75, 0.75, 0.75)], alpha=(0.6, 0.8), keep_texture=False)


def leather(rng: Rng, size: int) -> Scene:
    """Grained hide: cells with grooves between them, slow colour drift."""
    base = jitter_colour(rng, (0.56, 0.3, 0.18), 0.03)
    f1, f2 = worley(rng, size, int(rng.uniform(330, 420)))
    groove = 1.0 - np.exp(-(((f2 - f1) / 0.022) ** 2))
    fine = standardise(rng.random((size, size), dtype=np.float32))
    value = 0.68 + 0.25 * groove + 0.05 * fractal_noise(rng, size, 4, octaves=3) + 0.025 * fine
    image = finish(shade(base, value))
    return Scene(image, everywhere(size), lambda: image, {})


def _leather_cut(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    points = curve_points(rng, site_in(scene, rng), rng.uniform(0.4, 0.6), 0.8)
    return line_mark(scene, rng, points, px(scene, 0.032, 2), None, factor=rng.uniform(0.15, 0.3))


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
    image = finish(paint(image, (0.42, 0.41, 0.4), grout))
    return Scene(image, everywhere(size), lambda: image, {})


def _tile_gray_stroke(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    points = curve_points(rng, site_in(scene, rng), rng.uniform(0.3, 0.55), 1.0)
    grey = rng.uniform(0.35, 0.5)
    return line_mark(scene, rng, points, px(scene, rng.uniform(0.035, 0.055), 2), (grey, grey, grey * 1.02))


def wood(rng: Rng, size: int) -> Scene:
    """Planed wood: growth rings of a far-away centre (almost vertical stripes), fibres along."""
    x, y = grid(size)
    cx = pick(rng, [-1.0, 1.0]) * rng.uniform(2.5, 5.0)
    cy = rng.uniform(-3.0, 3.0)
    r = np.hypot(x - cx, y - cy) + 0.035 * fractal_noise(rng, size, 3, octaves=3)
    ring = (0.5 + 0.5 * np.sin(2 * np.pi * r / rng.uniform(0.08, 0.11))) ** 3
    fibres = streaks(rng, size, max(4, size // 5), axis=0)
    value = 0.88 - 0.24 * ring + 0.04 * fibres + 0.04 * fractal_noise(rng, size, 2, octaves=2)
    image = finish(shade(jitter_colour(rng, (0.72, 0.52, 0.34), 0.03), value))
    return Scene(image, everywhere(size), lambda: image, {})


def _wood_scratch(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    points = curve_points(rng, site_in(scene, rng), rng.uniform(0.5, 0.9), 0.4)
    bright = np.clip(scene.image + (1 - scene.image) * rng.uniform(0.55, 0.75), 0, 1)
    region = stroke_region(size_of(scene), points, px(scene, 0.024, 2))
    return np.where(region[:, :, None], bright, scene.image).astype(np.float32), region


def _wood_liquid(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    size = size_of(scene)
    cx, cy = site_in(scene, rng)
    region = polygon_region(size, blob_points(rng, cx, cy, rng.uniform(0.13, 0.24), rng.uniform(1.0, 1.6)))
    wet = scene.image * rng.uniform(0.45, 0.6)
    wet = np.where(edge_of(region)[:, :, None], scene.image * 0.35, wet)  # a darker drying edge
    return np.where(region[:, :, None], wet, scene.image).astype(np.float32), region


TEXTURE_SPECS: tuple[CategorySpec, ...] = (
    CategorySpec(
        "carpet",
        False,
        carpet,
        {
            "color": lambda s, r: stain(
                s, r, (0.12, 0.2), [(0.75, 0.15, 0.1), (0.15, 0.25, 0.6), (0.1, 0.08, 0.05), (0.85, 0.8, 0.3)]
            ),
            "cut": _carpet_cut,
            "thread": _carpet_thread,
        },
    ),
    CategorySpec("grid", True, grid_mesh, {"broken": _grid_broken, "bent": _grid_bent, "glue": _grid_glue}),
    CategorySpec(
        "leather",
        False,
        leather,
        {
            "color": lambda s, r: stain(s, r, (0.12, 0.2), [(0.85, 0.75, 0.55), (0.1, 0.06, 0.04), (0.3, 0.45, 0.7)]),
            "cut": _leather_cut,
            "poke": lambda s, r: hole(s, r, (0.08, 0.12), (0.12, 0.06, 0.04)),
        },
    ),
    CategorySpec(
        "tile",
        False,
        tile,
        {
            "crack": lambda s, r: crack(s, r, (0.5, 0.85), width=0.026),
            "oil": lambda s, r: stain(s, r, (0.14, 0.24), [(0.3, 0.24, 0.14), (0.2, 0.2, 0.18)], alpha=(0.45, 0.65)),
            "gray_stroke": _tile_gray_stroke,
        },
    ),
    CategorySpec(
        "wood",
        False,
        wood,
        {
            "scratch": _wood_scratch,
            "hole": lambda s, r: hole(s, r, (0.07, 0.12), (0.14, 0.08, 0.04)),
            "liquid": _wood_liquid,
        },
    ),
)
