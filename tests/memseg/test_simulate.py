"""Anomaly simulation: Perlin masks, foreground masks, sources, blend, ablation switches, and the
procedural texture bank."""

from __future__ import annotations

import kornia
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from memseg.ablations import ABLATIONS
from memseg.perlin import perlin_2d
from memseg.procedural import procedural_textures
from memseg.simulate import (
    AnomalySimulator,
    SimulationConfig,
    blend,
    foreground_mask,
    perlin_mask,
    shuffle_grid,
    structure_augment,
)

SIZE = 64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _bank(colour: tuple[float, float, float], count: int = 4) -> torch.Tensor:
    return (torch.tensor(colour).view(1, 3, 1, 1) * 255).to(torch.uint8).expand(count, 3, SIZE, SIZE).contiguous()


def _object_images(batch: int, background: float, obj: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey background with a centred disc, light noise. Returns (images, disc mask (S, S))."""
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    disc = (yy - SIZE / 2) ** 2 + (xx - SIZE / 2) ** 2 < (SIZE * 0.3) ** 2
    images = torch.full((batch, 3, SIZE, SIZE), background)
    images[:, :, disc] = obj
    noise = 0.02 * torch.rand(batch, 3, SIZE, SIZE, generator=_gen(seed))
    return (images + noise).clamp(0, 1), disc


def _simulator(
    ablation: str = "full", category: str = "carpet", ratio: float = 1.0, bank: torch.Tensor | None = None
) -> AnomalySimulator:
    flags = ABLATIONS[ablation]
    config = SimulationConfig(
        category,
        SIZE,
        anomaly_ratio=ratio,
        texture_source=flags.texture_source,
        structure_source=flags.structure_source,
        foreground_mask=flags.foreground_mask,
    )
    return AnomalySimulator(config, _bank((1.0, 0.0, 1.0)) if bank is None else bank)


def test_perlin_noise_vanishes_on_the_lattice() -> None:
    res = torch.tensor([1, 2, 4, 8])
    noise = perlin_2d(SIZE, res, res.flip(0), max_res=8, generator=_gen(0))
    assert noise.shape == (4, SIZE, SIZE)
    for b in range(4):
        step_y, step_x = SIZE // int(res[b]), SIZE // int(res.flip(0)[b])
        assert noise[b, ::step_y, ::step_x].abs().max() < 1e-5
    assert noise.abs().max() > 0.3


def test_perlin_mask_is_binary_with_useful_coverage() -> None:
    masks = perlin_mask(64, SIZE, _gen(1), "cpu")
    assert masks.shape == (64, 1, SIZE, SIZE)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    coverage = masks.mean(dim=(1, 2, 3))
    assert 0.02 < coverage.mean() < 0.5
    assert (coverage > 0).float().mean() > 0.6
    assert coverage.std() > 0.01  # scales differ between samples


def test_simulation_is_deterministic_for_a_seed() -> None:
    images = torch.rand(4, 3, SIZE, SIZE, generator=_gen(0))
    sim = _simulator()
    out_a, mask_a = sim(images, _gen(3))
    out_b, mask_b = sim(images, _gen(3))
    out_c, _ = sim(images, _gen(4))
    assert torch.equal(out_a, out_b) and torch.equal(mask_a, mask_b)
    assert not torch.equal(out_a, out_c)


def test_only_the_anomaly_fraction_changes() -> None:
    images = torch.rand(8, 3, SIZE, SIZE, generator=_gen(0))
    out, masks = _simulator(ratio=0.5)(images, _gen(1))
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out[4:], images[4:]) and masks[4:].sum() == 0
    assert (masks[:4].sum(dim=(1, 2, 3)) > 0).all()
    outside = (masks[:4] == 0).expand(-1, 3, -1, -1)
    assert torch.equal(out[:4][outside], images[:4][outside])
    unchanged, none = _simulator(ratio=0.0)(images, _gen(1))
    assert torch.equal(unchanged, images) and none.sum() == 0


def test_blend_moves_towards_the_source_by_delta() -> None:
    images = torch.rand(16, 3, SIZE, SIZE, generator=_gen(0))
    anomaly = _simulator().draw(images, _gen(2))
    assert ((anomaly.delta >= 0.15) & (anomaly.delta <= 1.0)).all()
    assert anomaly.delta.std() > 0.05
    out = blend(images, anomaly)
    for b in range(16):
        inside = anomaly.mask[b, 0] > 0
        moved = (out[b][:, inside] - images[b][:, inside]).flatten()
        towards = (anomaly.source[b][:, inside] - images[b][:, inside]).flatten()
        usable = towards.abs() > 0.05
        factor = moved[usable] / towards[usable]
        assert ((factor > 0.15 - 1e-4) & (factor < 1.0 + 1e-4)).all()
        assert torch.allclose(factor, anomaly.delta[b].flatten().expand_as(factor), atol=1e-4)


def test_grid_shuffle_is_a_permutation_of_cells() -> None:
    grid, cell = 8, SIZE // 8
    labels = torch.arange(grid * grid, dtype=torch.float32).view(1, 1, grid, grid)
    images = labels.repeat_interleave(cell, 2).repeat_interleave(cell, 3).expand(3, 3, -1, -1).contiguous()
    shuffled = shuffle_grid(images, grid, _gen(0))
    cells = shuffled[:, 0, ::cell, ::cell]  # (3, 8, 8): the label of each output cell
    for b in range(3):
        assert sorted(cells[b].flatten().tolist()) == list(range(grid * grid))
        block = shuffled[b, 0].unfold(0, cell, cell).unfold(1, cell, cell)  # each cell stays whole
        assert (block == cells[b][:, :, None, None]).all()
    assert not torch.equal(cells[0], cells[1])
    assert not torch.equal(cells[0], labels[0, 0])


def test_structure_only_never_uses_the_texture_bank() -> None:
    images = torch.rand(8, 3, SIZE, SIZE, generator=_gen(0))
    bank_a, bank_b = _bank((1.0, 0.0, 1.0)), _bank((0.0, 1.0, 0.0))
    structure = [_simulator("structure_only", bank=bank)(images, _gen(5))[0] for bank in (bank_a, bank_b)]
    full = [_simulator("full", bank=bank)(images, _gen(5))[0] for bank in (bank_a, bank_b)]
    assert torch.equal(structure[0], structure[1])
    assert not torch.equal(full[0], full[1])
    assert AnomalySimulator(SimulationConfig("carpet", SIZE, texture_source=False)).texture_bank is None


def test_texture_only_never_uses_the_image_structure() -> None:
    images_a = torch.rand(8, 3, SIZE, SIZE, generator=_gen(0))
    images_b = torch.rand(8, 3, SIZE, SIZE, generator=_gen(1))
    texture = [_simulator("texture_only").draw(images, _gen(5)).source for images in (images_a, images_b)]
    full = [_simulator("full").draw(images, _gen(5)).source for images in (images_a, images_b)]
    assert torch.equal(texture[0], texture[1])
    assert not torch.equal(full[0], full[1])
    # The unique bank colour (magenta, gain +-20 %, offset +-0.1) is what lands in the mask.
    anomaly = _simulator("texture_only").draw(images_a, _gen(5))
    assert (anomaly.source[:, 1] < 0.15).all() and (anomaly.source[:, 0] > 0.65).all()


def test_foreground_mask_keeps_anomalies_on_the_object() -> None:
    images, disc = _object_images(16, background=0.95, obj=0.2)
    on_object = _simulator("full", category="capsule")(images, _gen(0))[1]
    anywhere = _simulator("no_foreground_mask", category="capsule")(images, _gen(0))[1]
    background = ~disc
    assert on_object.sum() > 0 and on_object[:, 0, background].sum() == 0
    assert anywhere[:, 0, background].sum() > 0


@pytest.mark.parametrize(
    ("category", "background", "obj", "why"),
    [
        ("capsule", 0.95, 0.2, "table threshold fits"),
        ("capsule", 0.1, 0.8, "table picks the background: corner-colour fallback"),
        ("hazelnut", 0.8, 0.3, "table marks everything: corner-colour fallback"),
        ("toothbrush", 0.05, 0.9, "inverted table fits"),
    ],
)
def test_foreground_mask_finds_the_object(category: str, background: float, obj: float, why: str) -> None:
    images, disc = _object_images(2, background, obj)
    mask = foreground_mask(images, category)[:, 0].bool()
    agreement = (mask == disc).float().mean()
    assert agreement > 0.98, why


def test_frame_filling_objects_keep_the_table_mask() -> None:
    # A zipper's dark fabric (foreground by the official threshold) reaches the corners.
    images, teeth = _object_images(2, background=0.2, obj=0.9)
    mask = foreground_mask(images, "zipper")[:, 0].bool()
    assert (mask == ~teeth).float().mean() > 0.98


def test_foreground_mask_all_ones_where_it_does_not_apply() -> None:
    images, _ = _object_images(2, 0.95, 0.2)
    assert foreground_mask(images, "carpet").all()  # texture category
    flat = torch.full((2, 3, SIZE, SIZE), 0.5)
    assert foreground_mask(flat, "capsule").all()  # nothing to find: everywhere


def test_bad_configuration_is_refused() -> None:
    config = SimulationConfig("carpet", SIZE)
    with pytest.raises(ValueError, match="no texture bank"):
        AnomalySimulator(config)
    with pytest.raises(ValueError, match="uint8"):
        AnomalySimulator(config, _bank((1, 0, 1)).float())
    with pytest.raises(ValueError, match="float"):
        AnomalySimulator(config, _bank((1, 0, 1)))((torch.rand(2, 3, SIZE, SIZE) * 255).to(torch.uint8), _gen(0))
    with pytest.raises(ValueError, match="at least one anomaly source"):
        SimulationConfig("carpet", SIZE, texture_source=False, structure_source=False)
    with pytest.raises(ValueError, match="grid_size"):
        SimulationConfig("carpet", 60)


def test_procedural_textures_are_deterministic_and_varied() -> None:
    bank = procedural_textures(10, SIZE, seed=3)
    assert bank.shape == (10, 3, SIZE, SIZE) and bank.dtype == torch.uint8
    assert torch.equal(bank, procedural_textures(10, SIZE, seed=3))
    assert not torch.equal(bank, procedural_textures(10, SIZE, seed=4))
    as_float = bank.float() / 255
    assert (as_float.std(dim=(1, 2, 3)) > 0.03).all()  # none is flat
    means = as_float.mean(dim=(2, 3))  # (10, 3)
    assert torch.cdist(means, means).max() > 0.3  # colours differ between textures


def test_structure_augmentations_agree_with_kornia() -> None:
    # The batched rewrites keep kornia's definitions (HSV model, PIL sharpness, rotation).
    from memseg.simulate import _hue_saturation, _rotate, _sharpness

    images = torch.rand(4, 3, SIZE, SIZE, generator=_gen(0))
    images[0] = 0.5  # grey: hue 0 in kornia, so a saturation gain turns it red
    hue = torch.tensor([-1.2, -0.3, 0.5, 1.1])  # radians
    sat = torch.tensor([0.2, -0.1, 0.15, -0.2])
    hsv = kornia.color.rgb_to_hsv(images)
    shifted = torch.cat(
        [
            torch.remainder(hsv[:, :1] + hue.view(-1, 1, 1, 1), 2 * torch.pi),
            (hsv[:, 1:2] + sat.view(-1, 1, 1, 1)).clamp(0, 1),
            hsv[:, 2:],
        ],
        dim=1,
    )
    expected = kornia.color.hsv_to_rgb(shifted)
    assert torch.allclose(_hue_saturation(images, hue * 3 / torch.pi, sat), expected, atol=1e-5)
    factor = torch.tensor([0.0, 0.5, 1.0, 2.0])
    assert torch.allclose(_sharpness(images.clone(), factor), kornia.enhance.sharpness(images, factor), atol=1e-6)
    angle = torch.tensor([-80.0, -10.0, 30.0, 90.0])
    rotated = kornia.geometry.transform.rotate(images, angle)
    assert torch.allclose(_rotate(images, angle * torch.pi / 180), rotated, atol=1e-4)


def test_unchosen_structure_augmentations_are_the_identity() -> None:
    # Augmentations an image did not choose run with identity parameters instead of a where.
    images = torch.rand(4, 3, SIZE, SIZE, generator=_gen(0))
    assert torch.allclose(structure_augment(images, _gen(1), count=0), images, atol=1e-4)
    changed = (structure_augment(images, _gen(1)) - images).abs().amax(dim=(1, 2, 3))
    assert (changed > 0.05).all()


class _OpCounter(TorchDispatchMode):
    """Counts the aten ops that launch work (views and empty allocations left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not (func.is_view or func.overloadpacket.__name__ in {"empty", "empty_strided"}):
            self.kernels += 1
        return func(*args, **(kwargs or {}))


def test_simulation_stays_cheap_in_kernel_launches() -> None:
    # On a GPU the simulator is launch-bound (~5-15 us per op): it must stay well under a training
    # step (~550 ops forward + backward + AdamW). 193 ops when written; ~500 before the rewrite.
    size = 256
    bank = (torch.rand(4, 3, size, size, generator=_gen(0)) * 255).to(torch.uint8)
    simulator = AnomalySimulator(SimulationConfig("bottle", size), bank)
    images = torch.rand(8, 3, size, size, generator=_gen(1))
    with _OpCounter() as counter:
        simulator(images, _gen(2))
    assert counter.kernels <= 232
