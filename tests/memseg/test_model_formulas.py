"""One test per formula of the official MemSeg (docs/model.md, docs/faithfulness.md), on
hand-built features and banks small enough to compute by hand."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from memseg.model import CoordinateAttention, MemSeg, smooth, spatial_attention

SIZE = 32  # levels: 64 @ 8x8, 128 @ 4x4, 256 @ 2x2
SHAPES = ((64, 8), (128, 4), (256, 2))

# The official trainable counts (areylng/MemSeg model.py, modules the forward runs; their convs
# before BN carry a bias) and ours (no bias before BN).
OFFICIAL_MSFF, OFFICIAL_DECODER = 5_829_280, 3_998_042
OURS_MSFF, OURS_DECODER = 5_827_264, 3_996_450


def _model(**kwargs) -> MemSeg:
    torch.manual_seed(0)
    return MemSeg(image_size=SIZE, memory_size=3, **kwargs).eval()


def _constant_levels(values: tuple[float, float, float]) -> list[torch.Tensor]:
    return [torch.full((1, c, s, s), v) for (c, s), v in zip(SHAPES, values)]


def _set_bank(model: MemSeg, items: list[tuple[float, float, float]]) -> None:
    """Bank item n is constant items[n][l] at level l."""
    for level, (c, s) in enumerate(SHAPES):
        bank = torch.stack([torch.full((c, s, s), item[level]) for item in items])
        getattr(model, f"memory_{level + 1}").copy_(bank)
    model.memory_filled.fill_(True)


# Item 0 is nearest at level 1, item 1 at level 2, item 2 at level 3; jointly item 0 wins:
# per-level means for input (0.1, 0.2, 0.3): item 0: 0.1 + 9.8 + 9.7 = 19.6, item 1: 9.9 + 0.2 + 9.7
# = 19.8, item 2: 9.9 + 9.8 + 0.3 = 20.0.
BANK = [(0.0, 10.0, 10.0), (10.0, 0.0, 10.0), (10.0, 10.0, 0.0)]
INPUT = (0.1, 0.2, 0.3)


def test_memory_item_is_chosen_per_level_and_di_is_its_difference() -> None:
    model = _model()
    _set_bank(model, BANK)
    levels = _constant_levels(INPUT)
    assert [int(i) for i in model.nearest_memory(levels)] == [0, 1, 2]
    diffs = model.difference(levels)
    for diff, expected in zip(diffs, (0.1, 0.2, 0.3)):
        assert torch.allclose(diff, torch.full_like(diff, expected), atol=1e-6)


def test_joint_memory_ablation_chooses_one_item_for_all_levels() -> None:
    model = _model(joint_memory=True)
    _set_bank(model, BANK)
    assert [int(i) for i in model.nearest_memory(_constant_levels(INPUT))] == [0, 0, 0]
    diffs = model.difference(_constant_levels(INPUT))
    for diff, expected in zip(diffs, (0.1, 9.8, 9.7)):
        assert torch.allclose(diff, torch.full_like(diff, expected), atol=1e-5)


def test_distance_is_the_summed_absolute_difference_not_the_squared_one() -> None:
    """Official: sum of sqrt((M - F)^2) = sum |M - F|. Against a zero input, item A (one element
    = 3: L1 3, L2 3) beats item B (four elements = 1: L1 4, L2 2) only under L1."""
    model = _model()
    zeros = _constant_levels((0.0, 0.0, 0.0))
    for level, (c, s) in enumerate(SHAPES):
        bank = torch.zeros(3, c, s, s)
        bank[0].view(-1)[0] = 3.0  # A
        bank[1].view(-1)[:4] = 1.0  # B
        bank[2] = 5.0  # far away
        getattr(model, f"memory_{level + 1}").copy_(bank)
    model.memory_filled.fill_(True)
    assert [int(i) for i in model.nearest_memory(zeros)] == [0, 0, 0]


def test_spatial_attention_counts_m3_once() -> None:
    """m = (2, 3, 5) per level: M3 = 5, M2 = 3 * 5 = 15, M1 = 2 * 3 * 5 = 30 (m3 twice: 150)."""
    diffs = [torch.full((1, 4, s, s), v) for (_, s), v in zip(SHAPES, (2.0, 3.0, 5.0))]
    diffs[0][:, 0] = 0.0  # channel mean: (0 + 3 * 8/3) / 4 = 2
    diffs[0][:, 1:] = 8.0 / 3.0
    maps = spatial_attention(diffs)
    assert [tuple(m.shape) for m in maps] == [(1, 1, 8, 8), (1, 1, 4, 4), (1, 1, 2, 2)]
    for attention, expected in zip(maps, (30.0, 15.0, 5.0)):
        assert torch.allclose(attention, torch.full_like(attention, expected), atol=1e-5)


def test_spatial_attention_upsamples_bilinearly_to_each_level_size() -> None:
    """m3 = [[0, 4], [0, 4]] (2x2) upsampled to 4x4 with align_corners=False: columns 0, 1, 3, 4."""
    m3 = torch.tensor([[0.0, 4.0], [0.0, 4.0]]).view(1, 1, 2, 2)
    diffs = [torch.ones(1, 1, 8, 8), torch.ones(1, 1, 4, 4), m3]
    _, m2_map, m3_map = spatial_attention(diffs)
    assert torch.equal(m3_map, m3)
    assert torch.allclose(m2_map[0, 0], torch.tensor([0.0, 1.0, 3.0, 4.0]).expand(4, 4))


def test_scales_reach_msff_and_the_decoder() -> None:
    """MSFF input = [feature_scale * raw F_l, di_scale * |smooth(F_l) - M_l|]; the fused levels
    are multiplied by the attention maps of the scaled DI."""
    model = _model(di_scale=7.0, feature_scale=3.0)
    memory = torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    model.fill_memory(memory)
    images = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    seen: dict[str, Any] = {}
    model.msff.register_forward_hook(lambda _m, args, out: seen.update(concats=args[0], fused=out))
    model.decoder.register_forward_pre_hook(lambda _m, args: seen.update(decoder=args))
    with torch.no_grad():
        model(images)
        stem, raw = model.frozen_features(images)
        diffs = [7.0 * d for d in model.difference([smooth(f) for f in raw])]
    for concat, feats, diff in zip(seen["concats"], raw, diffs):
        channels = feats.shape[1]
        assert torch.allclose(concat[:, :channels], 3.0 * feats)
        assert torch.allclose(concat[:, channels:], diff)
    for given, fused, attention in zip(seen["decoder"][1], seen["fused"], spatial_attention(diffs)):
        assert torch.allclose(given, fused * attention)
    assert torch.equal(seen["decoder"][2], stem)


def test_the_stem_is_post_relu_as_the_official_bn1_hook_sees_it() -> None:
    """The official code hooks torchvision's bn1, whose output the in-place ReLU then overwrites:
    what the hook holds (and the decoder gets) is relu(bn1(conv1(x)))."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18(weights=None).eval()
    hooked: list[torch.Tensor] = []
    net.bn1.register_forward_hook(lambda _m, _i, out: hooked.append(out))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        net(x)
        pre_relu = net.bn1(net.conv1(x))
    assert (pre_relu < 0).any()
    assert torch.equal(hooked[0], torch.relu(pre_relu))
    model = _model()
    images = torch.rand(1, 3, SIZE, SIZE)
    enc = model.encoder
    with torch.no_grad():
        stem, _ = model.frozen_features(images)
        expected = torch.relu(enc.bn1(enc.conv1((images - model.pixel_mean) / model.pixel_std)))
    assert torch.equal(stem, expected) and float(stem.min()) >= 0.0


def test_initialisation_is_pytorch_default_as_the_official_init_loop_never_reaches_a_conv() -> None:
    """The official Decoder.Init / Aggregate.Init test isinstance(m, nn.Conv2d) on top-level
    containers (nn.Sequential, CoordAtt, SE); none is a conv, BN or Linear, so the N(0, 0.02) init
    never runs. Ours: PyTorch defaults, conv weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BN 1 and 0."""
    containers = [nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2)), CoordinateAttention(16)]
    assert not any(isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)) for m in containers)
    model = _model()
    for module in [*model.msff.modules(), *model.decoder.modules()]:
        if isinstance(module, nn.Conv2d):
            fan_in = module.weight[0].numel()
            assert float(module.weight.detach().abs().max()) <= fan_in**-0.5 + 1e-7
        if isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
    wide = model.decoder.block_16[0][0].weight  # type: ignore[index]  # fan_in 4608: default std 0.0085, not 0.02
    assert float(wide.detach().std()) == pytest.approx(4608**-0.5 / 3**0.5, rel=0.05)


def test_upsampling_is_align_corners_true_in_decoder_and_msff() -> None:
    model = _model()
    ups = [m for m in [*model.decoder.modules(), *model.msff.modules()] if isinstance(m, nn.Upsample)]
    assert len(ups) == 7 and all(m.align_corners and m.mode == "bilinear" and m.scale_factor == 2 for m in ups)


def test_parameter_counts_against_the_official() -> None:
    model = _model()

    def trainable(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters() if p.requires_grad)

    def missing_biases(module: nn.Module) -> int:  # one per output channel of each conv without one
        return sum(m.out_channels for m in module.modules() if isinstance(m, nn.Conv2d) and m.bias is None)

    assert (trainable(model.msff), trainable(model.decoder)) == (OURS_MSFF, OURS_DECODER)
    assert trainable(model.msff) + missing_biases(model.msff) == OFFICIAL_MSFF
    assert trainable(model.decoder) + missing_biases(model.decoder) == OFFICIAL_DECODER


def test_official_fixture_counts_match_the_official_figures() -> None:
    from memseg.official import AGGREGATE, DECODER, is_unused, official_shapes

    def count(prefix: str) -> int:
        return sum(
            torch.Size(shape).numel()
            for key, shape in official_shapes().items()
            if key.startswith(prefix) and not is_unused(key) and "running" not in key and "num_batches" not in key
        )

    assert (count(AGGREGATE), count(DECODER)) == (OFFICIAL_MSFF, OFFICIAL_DECODER)


def test_bank_shapes_are_fixed_at_construction() -> None:
    model = MemSeg(image_size=64, memory_size=5)
    assert [tuple(b.shape) for b in model.memory] == [(5, 64, 16, 16), (5, 128, 8, 8), (5, 256, 4, 4)]
    assert not bool(model.memory_filled)
    assert [
        tuple(b.shape[:1]) for b in MemSeg(image_size=64, memory_size=5, use_memory=False, use_spatial_attention=False).memory
    ] == [(0,)] * 3
