"""The ten object categories of the synthetic data set (bottle ... zipper): how a normal sample
looks (an object on a plain backdrop, re-renderable with a part changed: a missing wire, a bent
leg) and how each defect type changes it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from memseg.data.synthetic.defects import (
    CategorySpec,
    Rng,
    Scene,
    chunk_missing,
    crack,
    displaced,
    everywhere,
    finish,
    grey,
    hole,
    line_mark,
    particle,
    pick,
    px,
    site_in,
    size_of,
    stain,
)
from memseg.data.synthetic.drawing import (
    GLYPHS,
    Array,
    coverage,
    curve_points,
    edge_of,
    fractal_noise,
    from_local,
    grid,
    jitter_colour,
    paint,
    print_sdf,
    random_point_in,
    sd_box,
    sd_circle,
    shade,
    smooth_noise,
    streaks,
    stroke_region,
    to_local,
)


def _backdrop(rng: Rng, size: int, level: float, spread: float = 0.02) -> Array:
    """A plain background: `level` grey, with a faint vignette and blotches."""
    x, y = grid(size)
    vignette = 1.0 - 0.06 * (x**2 + y**2)
    return grey(level * vignette + spread * fractal_noise(rng, size, 4, octaves=2))


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
    image = paint(image, grey(opening), coverage(r - lip_in, size))
    image = finish(image)
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
    centres = [
        (cx + ring_r * np.cos(turn + k * 2 * np.pi / 3 - np.pi / 2), cy + ring_r * np.sin(turn + k * 2 * np.pi / 3 - np.pi / 2))
        for k in range(3)
    ]
    strands = 0.8 + 0.2 * np.cos(x * 2 * np.pi / 0.06) * np.cos(y * 2 * np.pi / 0.06)

    def render(recolour: tuple[int, int] | None = None, no_core: int | None = None) -> Array:
        image = paint(background, shade((0.16, 0.16, 0.17), sheath_value), coverage(sd_circle(x, y, cx, cy, sheath_r), size))
        for k, (wx, wy) in enumerate(centres):
            d = np.hypot(x - wx, y - wy)
            colour = colours[recolour[1]] if recolour and recolour[0] == k else colours[k]
            image = paint(image, shade(colour, 0.75 + 0.3 * np.clip(1 - (d / ins_r) ** 2, 0, 1)), coverage(d - ins_r, size))
            core = grey(0.08 + 0.1 * (d / core_r)) if no_core == k else shade((0.82, 0.54, 0.3), strands)
            image = paint(image, core, coverage(d - core_r, size))
        return finish(image)

    image = render()
    fg = np.hypot(x - cx, y - cy) < sheath_r
    wires = np.zeros_like(fg)
    for wx, wy in centres:
        wires |= np.hypot(x - wx, y - wy) < ins_r + 0.02
    return Scene(image, fg, render, {"centre": (cx, cy), "sheath": sheath_r, "wires": wires})


def _cable_swap(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    i = int(rng.integers(3))
    j = (i + 1 + int(rng.integers(2))) % 3
    return scene.render(recolour=(i, j)), everywhere(size_of(scene))


def _cable_missing_wire(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return scene.render(no_core=int(rng.integers(3))), everywhere(size_of(scene))


def _cable_cut_outer(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    cx, cy = scene.anchors["centre"]
    angle = rng.uniform(0, 2 * np.pi)
    dist = scene.anchors["sheath"] - rng.uniform(0.02, 0.08)
    site = (cx + dist * np.cos(angle), cy + dist * np.sin(angle))
    exposed = shade(jitter_colour(rng, (0.62, 0.58, 0.5), 0.04), 0.85 + 0.3 * smooth_noise(rng, size_of(scene), 16))
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
    body = np.where(
        (u < 0)[:, :, None], shade((0.17, 0.16, 0.16), cylinder), shade(jitter_colour(rng, (0.88, 0.5, 0.12), 0.02), cylinder)
    )
    body_sdf = sd_box(u, v, half_len, half_h, radius=half_h)

    def render(drop: frozenset[tuple[int, str]] = frozenset()) -> Array:
        image = paint(background, body, coverage(body_sdf, size))
        image = paint(image, (0.1, 0.08, 0.06), coverage(np.abs(u) - 0.008, size) * coverage(body_sdf, size))
        text = print_sdf(u, v, "500", 0.14, 0.09, 0.17, 0.03, drop)
        return finish(paint(image, (0.15, 0.1, 0.08), coverage(text, size)))

    image = render()
    return Scene(image, body_sdf < 0, render, {"pose": (cx, cy, angle), "half": (half_len, half_h)})


def _capsule_imprint(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    segments = [(i, s) for i, ch in enumerate("500") for s in GLYPHS[ch]]
    chosen = rng.choice(len(segments), size=int(rng.integers(3, 7)), replace=False)
    image = scene.render(drop=frozenset(segments[k] for k in chosen))
    cx, cy, angle = scene.anchors["pose"]
    start = from_local(rng.uniform(0.1, 0.45), rng.uniform(-0.1, 0.1), cx, cy, angle)
    smear = stroke_region(size_of(scene), curve_points(rng, start, rng.uniform(0.1, 0.2), 1.0), px(scene, 0.03, 2)) & scene.fg
    image = np.where(smear[:, :, None], np.float32(0.15), image)
    return image.astype(np.float32), everywhere(size_of(scene))


def _capsule_squeeze(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    cx, cy, angle = scene.anchors["pose"]
    half_len, half_h = scene.anchors["half"]
    side = pick(rng, [-1.0, 1.0])
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
    image = finish(paint(_backdrop(rng, size, 0.06, 0.01), nut, coverage(sdf, size)))
    return Scene(image, sdf < 0, lambda: image, {})


def _hazelnut_print(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    colour = pick(rng, [(0.25, 0.3, 0.85), (0.6, 0.2, 0.7), (0.85, 0.2, 0.2)])
    cx, cy = site_in(scene, rng, margin_px=4)
    region = np.zeros_like(scene.fg)
    for k in range(int(rng.integers(3, 6))):  # a few handwritten-looking letters in a row
        start = (cx + 0.1 * k - 0.15, cy + rng.normal(0, 0.02))
        region |= stroke_region(size_of(scene), curve_points(rng, start, rng.uniform(0.1, 0.16), 4.0), px(scene, 0.026, 2))
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
        return finish(paint(background, shade(metal, value), coverage(sdf, size)))

    image = render()
    return Scene(image, nut_sdf(None) < 0, render, {})


def _metal_nut_bent(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return scene.render(bend=(int(rng.integers(4)), pick(rng, [-1, 1]) * rng.uniform(0.25, 0.4))), everywhere(size_of(scene))


def _scratch(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    points = curve_points(rng, site_in(scene, rng), rng.uniform(0.45, 0.7), 0.5)
    colour = pick(rng, [(0.95, 0.95, 0.95), (0.12, 0.12, 0.12)])
    return line_mark(scene, rng, points, px(scene, 0.028, 2), colour)


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
    image = finish(paint(_backdrop(rng, size, 0.08, 0.01), body, coverage(sdf, size)))
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
        image = paint(background, grey(shank_value), coverage(shank_sdf, size))
        return finish(paint(image, grey(head_value), coverage(head_sdf, size)))

    image = render()
    u, v = to_local(x, y, cx, cy, spin)
    head = sd_box(u + 0.62, v, 0.11, 0.2, radius=0.05) < 0
    return Scene(image, np.abs(image - background).max(axis=2) > 0.05, render, {"pose": (cx, cy, spin), "head": head})


def _screw_thread_side(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    cx, cy, spin = scene.anchors["pose"]
    site = from_local(rng.uniform(-0.35, 0.35), pick(rng, [-1, 1]) * 0.1, cx, cy, spin)
    return chunk_missing(scene, rng, scene.render(no_screw=True), site, rng.uniform(0.11, 0.15))


def _screw_front(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return scene.render(tip_bend=pick(rng, [-1, 1]) * rng.uniform(0.4, 0.7)), everywhere(size_of(scene))


def _screw_head(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    on_head = Scene(scene.image, scene.anchors["head"], scene.render, scene.anchors)
    image, region = scene.image, np.zeros_like(scene.fg)
    for _ in range(int(rng.integers(3, 5))):
        points = curve_points(rng, site_in(on_head, rng, margin_px=0), rng.uniform(0.2, 0.35), 0.5)
        image, part = line_mark(Scene(image, on_head.fg, scene.render, {}), rng, points, px(scene, 0.03, 2), None, 0.3)
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
    base = paint(
        background,
        shade((0.3, 0.32, 0.42), 0.85 + 0.15 * np.clip(1 - (u / 0.4) ** 2, 0, 1)),
        coverage(np.minimum(head_sdf, handle_sdf), size),
    )
    tufts = [
        (tu + rng.normal(0, 0.008), tv + rng.normal(0, 0.008)) for tv in np.linspace(-0.68, 0.56, 9) for tu in (-0.23, 0.0, 0.23)
    ]
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
        return finish(image)

    image = render()
    return Scene(image, head_sdf < 0, render, {"tufts": tufts, "pose": (cx, cy, angle)})


def _toothbrush_missing(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    first = int(rng.integers(27))
    step = pick(rng, [1, 3])  # neighbours in a row or in a column
    missing = frozenset(k for k in range(first, first + step * int(rng.integers(1, 4)), step) if k < 27)
    return scene.render(missing=missing), everywhere(size_of(scene))


def _toothbrush_bent(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    tu, tv = pick(rng, scene.anchors["tufts"])
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
        board = paint(board, grey(np.full(x.shape, 0.62, np.float32)), coverage(sd_circle(x, y, px_, py_, 0.1), size))
        board = paint(board, grey(np.full(x.shape, 0.15, np.float32)), coverage(sd_circle(x, y, px_, py_, 0.035), size))
    cx, cy = rng.uniform(-0.03, 0.03), rng.uniform(-0.02, 0.02)
    angle = rng.uniform(-0.04, 0.04)
    u, v = to_local(x, y, cx, cy - 0.3, angle)
    body_sdf = sd_box(u, v, 0.4, 0.3, radius=0.07)
    body = shade((0.12, 0.12, 0.13), 0.85 + 0.5 * np.exp(-(((v + 0.1) / 0.08) ** 2)) * np.clip(1 - (u / 0.4) ** 2, 0, 1))

    def leg_sdf(k: int, bend: float, cut: float) -> tuple[Array, Array]:
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
        return finish(image)

    image = render()
    return Scene(image, body_sdf < 0, render, {})


def _transistor_bent(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return scene.render(bend=(int(rng.integers(3)), pick(rng, [-1, 1]) * rng.uniform(0.3, 0.55))), everywhere(size_of(scene))


def _transistor_cut(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    return scene.render(cut=(int(rng.integers(3)), rng.uniform(0.35, 0.75))), everywhere(size_of(scene))


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
        return grey(image)

    image = render()
    return Scene(image, everywhere(size), render, {"u": u, "pose": (cx, 0.0, angle)})


def _zipper_broken(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    side = pick(rng, [-1, 1])
    first = int(rng.integers(-6, 5))
    missing = frozenset((side, first + k) for k in range(int(rng.integers(1, 4))))
    return scene.render(missing=missing), everywhere(size_of(scene))


def _zipper_split(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    cx, cy, angle = scene.anchors["pose"]
    site = from_local(rng.uniform(-0.04, 0.04), rng.uniform(-0.7, 0.7), cx, cy, angle)
    direction = angle + pick(rng, [0.0, np.pi])  # push the teeth sideways, apart
    return displaced(scene, rng, site, rng.uniform(0.2, 0.26), rng.uniform(0.09, 0.13), direction=direction)


def _zipper_fabric(scene: Scene, rng: Rng) -> tuple[Array, Array]:
    on_fabric = Scene(scene.image, np.abs(scene.anchors["u"]) > 0.36, scene.render, scene.anchors)
    if rng.random() < 0.5:
        return stain(on_fabric, rng, (0.09, 0.14), [(0.75, 0.75, 0.75)], alpha=(0.7, 0.9))
    return hole(on_fabric, rng, (0.08, 0.12), (0.05, 0.05, 0.05))


OBJECT_SPECS: tuple[CategorySpec, ...] = (
    CategorySpec(
        "bottle",
        False,
        bottle,
        {
            "broken_large": lambda s, r: _bottle_broken(s, r, (0.13, 0.18)),
            "broken_small": lambda s, r: _bottle_broken(s, r, (0.08, 0.11)),
            "contamination": lambda s, r: particle(s, r, (0.07, 0.11), [(0.8, 0.78, 0.72), (0.25, 0.25, 0.25), (0.6, 0.55, 0.2)]),
        },
    ),
    CategorySpec(
        "cable",
        False,
        cable,
        {
            "cable_swap": _cable_swap,
            "missing_wire": _cable_missing_wire,
            "cut_outer_insulation": _cable_cut_outer,
        },
    ),
    CategorySpec(
        "capsule",
        False,
        capsule,
        {
            "crack": lambda s, r: crack(s, r, (0.35, 0.55), width=0.024),
            "faulty_imprint": _capsule_imprint,
            "squeeze": _capsule_squeeze,
        },
    ),
    CategorySpec(
        "hazelnut",
        False,
        hazelnut,
        {
            "crack": lambda s, r: crack(s, r, (0.45, 0.75), width=0.026),
            "hole": lambda s, r: hole(s, r, (0.07, 0.12), (0.05, 0.04, 0.03)),
            "print": _hazelnut_print,
        },
    ),
    CategorySpec(
        "metal_nut",
        False,
        metal_nut,
        {
            "bent": _metal_nut_bent,
            "color": lambda s, r: stain(s, r, (0.12, 0.2), [(0.85, 0.3, 0.55), (0.25, 0.4, 0.9), (0.85, 0.7, 0.2)]),
            "scratch": _scratch,
        },
    ),
    CategorySpec(
        "pill",
        False,
        pill,
        {
            "color": lambda s, r: stain(s, r, (0.1, 0.18), [(0.85, 0.72, 0.25), (0.55, 0.35, 0.2), (0.85, 0.45, 0.6)]),
            "crack": lambda s, r: crack(s, r, (0.4, 0.6), width=0.024),
            "contamination": lambda s, r: particle(s, r, (0.06, 0.1), [(0.25, 0.2, 0.15), (0.15, 0.15, 0.18)]),
        },
    ),
    CategorySpec(
        "screw",
        True,
        screw,
        {
            "thread_side": _screw_thread_side,
            "manipulated_front": _screw_front,
            "scratch_head": _screw_head,
        },
    ),
    CategorySpec(
        "toothbrush",
        False,
        toothbrush,
        {
            "missing_bristles": _toothbrush_missing,
            "bent_bristles": _toothbrush_bent,
            "contamination": lambda s, r: particle(s, r, (0.06, 0.1), [(0.15, 0.12, 0.1), (0.7, 0.2, 0.15)]),
        },
    ),
    CategorySpec(
        "transistor",
        False,
        transistor,
        {
            "bent_lead": _transistor_bent,
            "cut_lead": _transistor_cut,
            "damaged_case": _transistor_case,
        },
    ),
    CategorySpec(
        "zipper",
        True,
        zipper,
        {
            "broken_teeth": _zipper_broken,
            "split_teeth": _zipper_split,
            "fabric_interior": _zipper_fabric,
        },
    ),
)
