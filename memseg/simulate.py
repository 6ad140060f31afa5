"""MemSeg anomaly simulation on whole batches: Perlin masks, foreground masks, texture and
structure anomaly sources, and the transparency blend (paper section 3.2).

Everything is batched torch with per-sample random parameters drawn as tensors from one
`torch.Generator`, so it runs on the training device with no per-image Python loop and no host
sync, and is deterministic for a seed on a given device. A training step on a GPU is bound by
kernel launches, not FLOPs, so the code keeps the number of dispatched ops low (about 200 per
call; benchmarks/sim_ops.py counts them): whole-batch ops with per-image parameters rather than
kornia's many small ops or a torch.where per augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange

from memseg.perlin import perlin_2d

# Foreground masks of the object categories, from the reference implementation's per-category
# table (TooTouch/MemSeg anomaly_mask.json): category -> (grey threshold on 0..255, inverted).
# A pixel is "bright" when its grey value (0.299 R + 0.587 G + 0.114 B) is > threshold.
#   inverted=False: the object is darker than a bright background, foreground = not bright.
#   inverted=True:  the object is brighter than a dark background, foreground = bright.
# Categories not listed (the textures, and folder data sets) use an all-ones foreground.
FOREGROUND: dict[str, tuple[int, bool]] = {
    "bottle": (250, False),
    "cable": (150, True),
    "capsule": (120, False),
    "hazelnut": (50, True),
    "metal_nut": (40, True),
    "pill": (100, True),
    "screw": (110, False),
    "toothbrush": (30, True),
    "transistor": (90, False),
    "zipper": (100, False),
}

# Objects whose table mask legitimately reaches the image corners (a zipper's fabric fills the
# frame): for them the corner check below is skipped.
FILLS_FRAME: frozenset[str] = frozenset({"zipper"})

# A foreground mask covering less than this fraction of the image is treated as a failure.
_MIN_FOREGROUND = 0.01
# The table mask is distrusted when more than this fraction of the four corner patches is
# foreground: objects in MVTec-style images sit inside a plain background, so a threshold that
# marks the corners has picked the background (e.g. generated data with its own colours).
_MAX_CORNER_FOREGROUND = 0.5
# Fallback: a pixel is foreground when some channel differs from the corner colour by more.
_BACKGROUND_TOLERANCE = 0.1


@dataclass(frozen=True)
class SimulationConfig:
    """How anomalies are simulated for one category. Defaults are the paper's."""

    category: str
    image_size: int
    anomaly_ratio: float = 0.5  # fraction of each batch that gets an anomaly
    texture_source: bool = True
    structure_source: bool = True
    foreground_mask: bool = True
    # Whether FOREGROUND's per-category thresholds may be looked up (MVTec AD's categories): off for
    # data sets without the table, so a category that shares an MVTec AD name gets all ones.
    foreground_table: bool = True
    grid_size: int = 8  # the structure source is cut into grid_size x grid_size cells
    transparency_range: tuple[float, float] = (0.15, 1.0)  # delta ~ U[lo, hi]
    perlin_scale_range: tuple[int, int] = (0, 6)  # lattice cells per axis: 2^randint(lo, hi)
    perlin_threshold: float = 0.5

    def __post_init__(self) -> None:
        if not (self.texture_source or self.structure_source):
            raise ValueError("at least one anomaly source (texture_source, structure_source) must be on")
        if not 0.0 <= self.anomaly_ratio <= 1.0:
            raise ValueError(f"anomaly_ratio must be in [0, 1], got {self.anomaly_ratio}")
        if self.image_size < 8 or self.image_size % self.grid_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of grid_size {self.grid_size}")
        lo, hi = self.transparency_range
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"transparency_range must satisfy 0 <= lo <= hi <= 1, got {self.transparency_range}")
        lo_scale, hi_scale = self.perlin_scale_range
        if not 0 <= lo_scale < hi_scale:
            raise ValueError(f"perlin_scale_range must satisfy 0 <= lo < hi, got {self.perlin_scale_range}")


def _uniform(shape: tuple[int, ...], lo: float, hi: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """U[lo, hi) drawn on the generator's device (one kernel), returned on `device`."""
    draw = torch.empty(shape, device=generator.device).uniform_(lo, hi, generator=generator)
    return draw.to(device)


def _randint(lo: int, hi: int, shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(lo, hi, shape, generator=generator, device=generator.device).to(device)


def _rotate(images: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate (B, C, S, S) images about their centre by `angle` (B,) radians: bilinear, zeros
    outside, corners aligned (what kornia's `rotate` does, in one affine_grid + grid_sample
    instead of its ~70 small kernels)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(angle)
    theta = torch.stack((cos, -sin, zero, sin, cos, zero), dim=1).view(-1, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=True)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


# ----------------------------------------------------------------------------------------------
# Masks


def _rotated_perlin(
    batch: int, size: int, generator: torch.Generator, device: torch.device, scale_range: tuple[int, int]
) -> torch.Tensor:
    """Perlin noise (B, 1, S, S), lattice 2^randint(scale_range) per axis, rotated by U[-90, 90] deg."""
    lo, hi = scale_range
    res = 2 ** _randint(lo, hi, (2, batch), generator, device)  # (2, B)
    noise = perlin_2d(size, res[0], res[1], max_res=2 ** (hi - 1), generator=generator).to(device)
    angle = _uniform((batch,), -torch.pi / 2, torch.pi / 2, generator, device)
    return _rotate(noise[:, None], angle)


def perlin_mask(
    batch: int,
    size: int,
    generator: torch.Generator,
    device: torch.device | str,
    scale_range: tuple[int, int] = (0, 6),
    threshold: float = 0.5,
) -> torch.Tensor:
    """Binary Perlin masks, (B, 1, S, S) float 0/1.

    Per sample: lattice resolution 2^randint(scale_range) along each axis independently, a random
    rotation in [-90, 90] degrees (zero padding outside the rotated noise), threshold.
    """
    noise = _rotated_perlin(batch, size, generator, torch.device(device), scale_range)
    return (noise > threshold).to(torch.float32)


def _corners(maps: torch.Tensor) -> torch.Tensor:
    """The four corner patches (S/16 square, at least 2 px) of (B, C, S, S) maps as
    (B, C, corner pixels), in one kernel. Static slices: a boolean mask would make the GPU sync."""
    width = max(2, maps.shape[-1] // 16)
    patches = (
        maps[:, :, :width, :width],
        maps[:, :, :width, -width:],
        maps[:, :, -width:, :width],
        maps[:, :, -width:, -width:],
    )
    return torch.stack(patches, dim=2).flatten(2)


def _binary_open(mask: torch.Tensor) -> torch.Tensor:
    """3x3 morphological opening of a (B, 1, S, S) 0/1 mask: removes isolated specks."""
    eroded = -F.max_pool2d(-mask, 3, stride=1, padding=1)
    return F.max_pool2d(eroded, 3, stride=1, padding=1)


def foreground_mask(images: torch.Tensor, category: str | None) -> torch.Tensor:
    """Where an anomaly may be placed, (B, 1, S, S) float 0/1; images float (B, 3, S, S) in [0, 1].

    Per image: the official grey threshold of `FOREGROUND` when it looks valid. It is distrusted
    when it marks under 1 % of the image, or (except for FILLS_FRAME categories) over half of the
    four corner patches: then it has picked the background, as on generated data whose colours
    differ from MVTec's, or marks nearly everything (bottle's threshold of 250). The fallback
    takes the corners' median colour as the background and marks pixels that differ from it by
    more than 0.1 in some channel, opened by a 3x3 square. If that is under 1 % too, the whole
    image is foreground. Categories not in `FOREGROUND` (textures, unknown, None) get all ones.
    """
    batch, _, size, _ = images.shape
    if category not in FOREGROUND:
        return torch.ones(batch, 1, size, size, device=images.device)
    threshold, inverted = FOREGROUND[category]
    images = images.to(torch.float32)
    # BT.601 grey on 0..255 (kornia's rgb_to_grayscale weights, times 255), three kernels.
    red, green, blue = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    grey = (red * (0.299 * 255.0)).add_(green, alpha=0.587 * 255.0).add_(blue, alpha=0.114 * 255.0)
    table = ((grey > threshold) if inverted else (grey <= threshold)).to(torch.float32)

    table_ok = table.mean(dim=(1, 2, 3)) >= _MIN_FOREGROUND  # (B,)
    if category not in FILLS_FRAME:
        table_ok = table_ok & (_corners(table).mean(dim=(1, 2)) <= _MAX_CORNER_FOREGROUND)

    background = _corners(images).median(dim=2).values  # (B, 3)
    distance = (images - background[:, :, None, None]).abs_().amax(dim=1, keepdim=True)
    contrast = _binary_open((distance > _BACKGROUND_TOLERANCE).to(torch.float32))

    mask = torch.where(table_ok[:, None, None, None], table, contrast)
    mask_ok = mask.mean(dim=(1, 2, 3)) >= _MIN_FOREGROUND
    return torch.where(mask_ok[:, None, None, None], mask, 1.0)


# ----------------------------------------------------------------------------------------------
# Anomaly sources


def _hue_saturation(images: torch.Tensor, hue_shift: torch.Tensor, sat_shift: torch.Tensor) -> torch.Tensor:
    """HSV hue rotation by `hue_shift` (B,) sextants (60 degrees each) and additive saturation
    shift `sat_shift` (B,), clamped to [0, 1]; value kept. The same HSV model as kornia's
    rgb_to_hsv / hsv_to_rgb (hue of the first maximal channel's sextant, grey pixels at hue 0),
    written with ~20 whole-image kernels instead of ~70: hue from max / min / argmax, and back with
    the closed form c_n = V - V S clamp(min(k, 4 - k), 0, 1), k = (n + H) mod 6, n = 5, 3, 1."""
    value, top = images.max(dim=1, keepdim=True)  # first maximal channel, as kornia picks
    chroma = value - images.amin(dim=1, keepdim=True)
    # Hue in sextants: (next - previous channel after the maximal one) / chroma + 2 * its index.
    spread = torch.gather(images.roll(-1, dims=1) - images.roll(1, dims=1), 1, top)
    hue = torch.add(spread / chroma.clamp_min(1e-12), top, alpha=2)
    sat = (chroma / (value + 1e-8)).add_(sat_shift[:, None, None, None]).clamp_(0.0, 1.0)
    channel = torch.arange(5, 0, -2, device=images.device, dtype=images.dtype)  # n = 5, 3, 1 (R, G, B)
    k = torch.remainder(hue + (channel[None, :] + hue_shift[:, None])[:, :, None, None], 6.0)
    weight = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return torch.addcmul(value, value * sat, weight, value=-1.0)


def _sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """kornia.enhance.sharpness (PIL's): blend with the 3x3 [[1,1,1],[1,5,1],[1,1,1]]/13 blur
    by `factor` (B,), 1 = unchanged, border pixels kept, clamped to [0, 1]. Works in place on
    `images`, which the caller owns."""
    channels = images.shape[1]
    kernel = torch.full((channels, 1, 3, 3), 1.0 / 13.0, device=images.device, dtype=images.dtype)
    kernel[:, :, 1, 1] = 5.0 / 13.0
    blurred = F.conv2d(images, kernel, groups=channels)  # (B, C, S - 2, S - 2): no border
    inner = images[:, :, 1:-1, 1:-1]
    inner.copy_(torch.lerp(blurred, inner, factor[:, None, None, None]).clamp_(0.0, 1.0))
    return images


def _posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top `bits` (B,) bits of each 8-bit level: floor(x 255 / 2^(8 - bits)) 2^(8 - bits) / 255.
    bits = 32 leaves float images unchanged up to rounding (the identity)."""
    levels = (torch.pow(2.0, bits) * (255.0 / 256.0)).to(images.dtype)[:, None, None, None]  # 255 / step
    return (images * levels).floor_().div_(levels)


def _autocontrast_invert(images: torch.Tensor, contrast: torch.Tensor, invert: torch.Tensor) -> torch.Tensor:
    """Autocontrast (stretch each channel to [0, 1]; flat channels unchanged) where `contrast`
    (B,) is True, then invert (1 - x) where `invert` (B,) is 1.0, as one per-channel affine map.

    Invert-then-autocontrast (the order of STRUCTURE_AUGMENTATIONS) equals autocontrast-then-
    invert exactly: stretching maps the channel's min and max to 0 and 1 either way."""
    low, high = images.flatten(2).aminmax(dim=2)  # (B, C) each
    spread = high - low
    keep = ~contrast[:, None] | (spread <= 0)
    low = low.masked_fill_(keep, 0.0)
    spread = spread.masked_fill_(keep, 1.0)
    sign = 1.0 - 2.0 * invert  # x -> inv + sign * (x - low) / spread
    scale = sign[:, None] / spread
    shift = torch.addcmul(invert[:, None], low, scale, value=-1.0)
    return torch.addcmul(shift[:, :, None, None], images, scale[:, :, None, None])


def _equalize(images: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation per image and channel, 256 levels, vectorised with scatter_add."""
    batch, channels, height, width = images.shape
    levels = (images * 255.0).round_().clamp_(0, 255).long().reshape(batch * channels, -1)
    ones = torch.ones((), device=images.device).expand(levels.shape)
    hist = torch.zeros(batch * channels, 256, device=images.device).scatter_add_(1, levels, ones)
    cdf = hist.cumsum(dim=1)
    # The cdf at the lowest occupied level (bins below it are never looked up).
    cdf_min = torch.gather(cdf, 1, levels.amin(dim=1, keepdim=True))
    lut = (cdf - cdf_min) / (height * width - cdf_min).clamp_min(1.0)
    return torch.gather(lut, 1, levels).reshape(batch, channels, height, width).to(images.dtype)


# The reference implementation's structure augmentations (imgaug there, torch here), three of
# which are applied to each structure source: gamma contrast per channel, brightness multiply and
# add, sharpness, hue and saturation shift, solarize (p = 0.5), posterize, invert, autocontrast,
# equalize, rotation. They run in this fixed order (the reference draws the order too; the order
# of three colour operations changes little).
STRUCTURE_AUGMENTATIONS: tuple[str, ...] = (
    "gamma",
    "brightness",
    "sharpness",
    "hue_saturation",
    "solarize",
    "posterize",
    "invert",
    "autocontrast",
    "equalize",
    "rotate",
)


def structure_augment(images: torch.Tensor, generator: torch.Generator, count: int = 3) -> torch.Tensor:
    """Apply `count` distinct random augmentations out of STRUCTURE_AUGMENTATIONS to each image.

    Every augmentation runs on the whole batch with per-image parameters, and an image that did
    not choose it gets the augmentation's identity parameters (gamma 1, gain 1, offset 0,
    sharpness 1, shifts 0, solarize threshold above 1, 32 posterize bits, angle 0, ...), so no
    image needs a torch.where except for equalize, which has no identity. That keeps one call at
    ~100 kernels, no per-image loop and no host sync: on a GPU the simulator is launch-bound.
    """
    batch, device = images.shape[0], images.device
    index = {name: i for i, name in enumerate(STRUCTURE_AUGMENTATIONS)}
    keys = torch.rand(batch, len(index), generator=generator, device=generator.device).to(device)
    chosen = keys.argsort(dim=1).argsort(dim=1) < count  # (B, n_aug): rank among the keys < count
    skip = ~chosen

    def draw(name: str, lo: float, hi: float, identity: float, channels: int = 0) -> torch.Tensor:
        """U[lo, hi) per image (and channel), `identity` where the image did not choose `name`."""
        shape = (batch, channels) if channels else (batch,)
        column = skip[:, index[name], None] if channels else skip[:, index[name]]
        return _uniform(shape, lo, hi, generator, device).masked_fill_(column, identity)

    gamma = draw("gamma", 0.5, 2.0, 1.0, channels=3)
    gain, offset = draw("brightness", 0.8, 1.2, 1.0), draw("brightness", -30 / 255, 30 / 255, 0.0)
    sharp = draw("sharpness", 0.0, 2.0, 1.0)
    hue_shift = draw("hue_saturation", -70 / 60, 70 / 60, 0.0)  # sextants: +-70 degrees
    sat_shift = draw("hue_saturation", -50 / 255, 50 / 255, 0.0)
    # Solarize with p = 0.5 at a threshold ~ U[32, 128] / 255: a threshold ~ U[32, 224] / 255 is
    # "off" (moved above 1, where no pixel reaches) when it lands above 128 / 255.
    solarize_at = draw("solarize", 32 / 255, 224 / 255, 2.0)
    solarize_at = solarize_at.masked_fill_(solarize_at > 128 / 255, 2.0)
    bits = _randint(1, 9, (batch,), generator, device).masked_fill_(skip[:, index["posterize"]], 32)
    angle = draw("rotate", -torch.pi / 4, torch.pi / 4, 0.0)

    out = images.clamp(0.0, 1.0).pow_(gamma[:, :, None, None])
    out = torch.addcmul(offset[:, None, None, None], out, gain[:, None, None, None]).clamp_(0.0, 1.0)
    out = _sharpness(out, sharp)
    out = _hue_saturation(out, hue_shift, sat_shift)
    out = torch.where(out >= solarize_at[:, None, None, None], 1.0 - out, out)
    out = _posterize(out, bits)
    invert = chosen[:, index["invert"]].to(out.dtype)
    out = _autocontrast_invert(out, chosen[:, index["autocontrast"]], invert)
    out = torch.where(chosen[:, index["equalize"], None, None, None], _equalize(out), out)
    return _rotate(out, angle)


def shuffle_grid(images: torch.Tensor, grid_size: int, generator: torch.Generator) -> torch.Tensor:
    """Cut each image into grid_size x grid_size cells and permute the cells, a different random
    permutation per image (one gather, no loop)."""
    batch = images.shape[0]
    cells = rearrange(images, "b c (gh h) (gw w) -> b (gh gw) c h w", gh=grid_size, gw=grid_size)
    perm = torch.rand(batch, grid_size * grid_size, generator=generator, device=generator.device).argsort(dim=1)
    perm = perm.to(images.device)
    cells = cells[torch.arange(batch, device=images.device)[:, None], perm]
    return rearrange(cells, "b (gh gw) c h w -> b c (gh h) (gw w)", gh=grid_size, gw=grid_size)


def texture_source(bank: torch.Tensor, batch: int, generator: torch.Generator) -> torch.Tensor:
    """`batch` random textures from a (K, 3, S, S) uint8 bank, float in [0, 1], each with a random
    per-channel gain in [0.8, 1.2] and brightness offset in [-0.1, 0.1]."""
    device = bank.device
    index = _randint(0, bank.shape[0], (batch,), generator, device)
    gain = _uniform((batch, 3, 1, 1), 0.8 / 255.0, 1.2 / 255.0, generator, device)  # includes 1 / 255
    offset = _uniform((batch, 1, 1, 1), -0.1, 0.1, generator, device)
    return torch.addcmul(offset, bank.index_select(0, index), gain).clamp_(0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# The simulator


@dataclass(frozen=True)
class SimulatedAnomaly:
    """The random parts of a batch of anomalies: mask (B, 1, S, S) 0/1, source (B, 3, S, S) in
    [0, 1], transparency delta (B, 1, 1, 1)."""

    mask: torch.Tensor
    source: torch.Tensor
    delta: torch.Tensor


def blend(images: torch.Tensor, anomaly: SimulatedAnomaly) -> torch.Tensor:
    """I' = (1 - M) I + M ((1 - delta) I + delta S), written as I + M delta (S - I) so that pixels
    outside the mask are exactly unchanged."""
    return torch.addcmul(images, anomaly.mask * anomaly.delta, anomaly.source - images)


class AnomalySimulator:
    """Turns part of a batch of normal images into simulated anomalies with their masks.

    The first round(B * anomaly_ratio) images of each batch get an anomaly (rounding half up);
    the rest come back unchanged with zero masks. Training batches are drawn at random, so
    which positions are chosen does not matter, and the count per batch is fixed.

    A sample whose Perlin mask times foreground is empty gets a second Perlin mask (drawn for
    every sample up front and selected with torch.where, so no host sync); if that is empty too
    the sample stays normal with an empty mask, as in the reference implementation.
    """

    def __init__(self, config: SimulationConfig, texture_bank: torch.Tensor | None = None) -> None:
        if config.texture_source:
            if texture_bank is None:
                raise ValueError(
                    "texture_source is on but no texture bank was given; pass "
                    "memseg.data.textures.load_texture_folder(...) or memseg.procedural.procedural_textures(...)"
                )
            size = config.image_size
            if texture_bank.dtype != torch.uint8 or texture_bank.ndim != 4 or tuple(texture_bank.shape[1:]) != (3, size, size):
                raise ValueError(
                    f"texture bank must be (K, 3, {size}, {size}) uint8, got {tuple(texture_bank.shape)} {texture_bank.dtype}"
                )
            if texture_bank.shape[0] == 0:
                raise ValueError("texture bank is empty")
        self.config = config
        self.texture_bank = texture_bank if config.texture_source else None

    def anomaly_count(self, batch: int) -> int:
        return int(batch * self.config.anomaly_ratio + 0.5)

    def _check(self, images: torch.Tensor) -> None:
        size = self.config.image_size
        if not images.is_floating_point() or images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"images must be float (B, 3, {size}, {size}) in [0, 1], got {tuple(images.shape)} {images.dtype}")
        if self.texture_bank is not None and self.texture_bank.device != images.device:
            raise ValueError(f"texture bank is on {self.texture_bank.device} but images are on {images.device}; move the bank")

    def draw(self, images: torch.Tensor, generator: torch.Generator) -> SimulatedAnomaly:
        """The random parts of an anomaly for each of `images` (all of them; the caller picks
        which images get one): its mask, its source image and its transparency."""
        cfg = self.config
        self._check(images)
        batch, size, device = images.shape[0], cfg.image_size, images.device

        # Where: Perlin mask inside the foreground, with one retry for an empty one.
        noise = _rotated_perlin(2 * batch, size, generator, device, cfg.perlin_scale_range)
        perlin = (noise > cfg.perlin_threshold).view(2, batch, 1, size, size)
        if cfg.foreground_mask:
            perlin = perlin * foreground_mask(images, cfg.category if cfg.foreground_table else None)
        first, second = perlin[0], perlin[1]
        mask = torch.where(first.amax(dim=(1, 2, 3), keepdim=True) > 0, first, second).to(images.dtype)

        # What: a texture, or the image's own shuffled structure, 50/50 when both are on.
        if cfg.texture_source:
            assert self.texture_bank is not None  # checked in __init__: texture_source needs a bank
            source = texture_source(self.texture_bank, batch, generator).to(images.dtype)
        if cfg.structure_source:
            structure = shuffle_grid(structure_augment(images, generator), cfg.grid_size, generator)
            if cfg.texture_source:
                # 0/1 per image; lerp with weight exactly 0 or 1 returns that end unchanged.
                use_texture = torch.empty(batch, 1, 1, 1, device=generator.device).bernoulli_(0.5, generator=generator)
                source = torch.lerp(structure, source, use_texture.to(device))
            else:
                source = structure

        delta = _uniform((batch, 1, 1, 1), *cfg.transparency_range, generator, device).to(images.dtype)
        return SimulatedAnomaly(mask=mask, source=source, delta=delta)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """images: float (B, 3, S, S) in [0, 1]. Returns (images_out, masks (B, 1, S, S) 0/1)."""
        self._check(images)
        batch, size = images.shape[0], self.config.image_size
        count = self.anomaly_count(batch)
        if count == 0:
            return images.clone(), torch.zeros(batch, 1, size, size, device=images.device, dtype=images.dtype)
        normal = images[:count]
        anomaly = self.draw(normal, generator)
        masks = F.pad(anomaly.mask, (0, 0, 0, 0, 0, 0, 0, batch - count))  # zero masks for the rest
        return torch.cat([blend(normal, anomaly), images[count:]], dim=0), masks
