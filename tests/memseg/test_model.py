"""MemSeg network: frozen encoder, memory bank, ablations, shapes and bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from memseg.ablations import ABLATIONS
from memseg.build import build_model
from memseg.config import JobConfig
from memseg.loss import memseg_loss
from memseg.model import CoordinateAttention, MemSeg, anomaly_map, smooth

SIZE = 64


def _images(n: int, seed: int, size: int = SIZE) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _model(ablation: str = "full", memory_seed: int | None = 0) -> MemSeg:
    torch.manual_seed(0)
    config = JobConfig(category="bottle", ablation=ablation, image_size=SIZE, memory_size=4, backbone_weights="none")
    model = build_model(config)
    if memory_seed is not None:
        model.fill_memory(_images(4, memory_seed))
    return model


def _train_steps(model: MemSeg, steps: int = 2) -> None:
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for step in range(steps):
        images = _images(2, 100 + step)
        masks = (torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(step)) > 0.7).float()
        loss, _ = memseg_loss(model(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _bn_stats(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k}


def test_frozen_bn_keeps_its_one_encoder_frozen_in_train_mode() -> None:
    """Ablation frozen_bn (revision 2's network): conv1-layer3 always in eval, statistics fixed."""
    model = _model("frozen_bn")
    encoder = model.encoder
    assert model.segment_encoder is None and model.deep_encoder is encoder
    frozen = [encoder.conv1, encoder.bn1, encoder.layer1, encoder.layer2, encoder.layer3]
    before = [_bn_stats(m) for m in frozen]
    weights_before = [copy.deepcopy(m.state_dict()) for m in frozen]
    layer4_before = _bn_stats(encoder.layer4)

    _train_steps(model)

    assert model.training and encoder.layer4.training
    assert not any(m.training for f in frozen for m in f.modules())
    assert not any(p.requires_grad for f in frozen for p in f.parameters())
    for module, stats, weights in zip(frozen, before, weights_before):
        for key, value in module.state_dict().items():
            assert torch.equal(value, weights[key]), key
        assert all(torch.equal(module.state_dict()[k], v) for k, v in stats.items())
    after = _bn_stats(encoder.layer4)
    assert any(not torch.equal(after[k], v) for k, v in layer4_before.items() if "running_mean" in k)


def test_two_encoders_a_training_step_moves_the_segment_encoders_statistics_not_the_feature_encoders() -> None:
    """The official build: the feature encoder (stem, layer1-3, memory bank) is always eval and
    never changes; the segment encoder's conv1-layer3 keep their weights but their BatchNorms run
    in train mode and their running statistics move; its layer4 trains."""
    model = _model()
    feature, segment = model.encoder, model.segment_encoder
    assert segment is not None and model.deep_encoder is segment and not hasattr(feature, "layer4")
    stages = ("conv1", "bn1", "layer1", "layer2", "layer3")
    feature_before = copy.deepcopy(feature.state_dict())
    segment_before = copy.deepcopy(segment.state_dict())
    memory_before = [m.clone() for m in model.memory]

    _train_steps(model)

    assert not any(m.training for m in feature.modules())
    assert all(getattr(segment, name).training for name in stages) and segment.layer4.training
    assert not any(p.requires_grad for p in feature.parameters())
    assert not any(p.requires_grad for name in stages for p in getattr(segment, name).parameters())
    assert all(p.requires_grad for p in segment.layer4.parameters())
    for key, value in feature.state_dict().items():
        assert torch.equal(value, feature_before[key]), key
    assert all(torch.equal(a, b) for a, b in zip(model.memory, memory_before))
    after = segment.state_dict()
    for key, value in segment_before.items():
        moved = not torch.equal(after[key], value)
        frozen_weight = key.split(".")[0] in stages and not any(s in key for s in ("running_", "num_batches"))
        if frozen_weight:
            assert not moved, key  # conv and BN weights of conv1-layer3 stay as they were
        elif "running_mean" in key or "running_var" in key:
            assert moved, key  # every BatchNorm of the segment encoder moved its statistics
    assert int(after["bn1.num_batches_tracked"]) == 2


def test_two_encoders_start_from_the_same_weights_and_equal_frozen_bn_in_eval() -> None:
    """Both encoders are copies of one backbone (with random init too), and with the same
    statistics the two-encoder model in eval computes exactly what frozen_bn computes."""
    two, one = _model("full"), _model("frozen_bn")
    segment = two.segment_encoder.state_dict()
    for key, value in two.encoder.state_dict().items():
        assert torch.equal(segment[key], value), key
    assert all(torch.equal(v, one.state_dict()[k.replace("segment_encoder.", "encoder.")]) for k, v in two.state_dict().items())
    images = _images(3, 7)
    with torch.no_grad():
        assert torch.equal(two.eval()(images), one.eval()(images))


def test_memory_bank_moves_and_round_trips(tmp_path) -> None:
    model = _model().eval()
    assert model.memory_1.shape == (4, 64, 16, 16)
    assert model.memory_3.shape == (4, 256, 4, 4)
    moved = copy.deepcopy(model).to(torch.float64)
    assert moved.memory_1.dtype == torch.float64 and moved.memory_3.dtype == torch.float64

    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    fresh = MemSeg(image_size=SIZE, memory_size=4).eval()  # empty bank before loading
    fresh.load_state_dict(torch.load(path, weights_only=True))
    for level in (1, 2, 3):
        assert torch.equal(getattr(fresh, f"memory_{level}"), getattr(model, f"memory_{level}"))
    images = _images(2, 7)
    with torch.no_grad():
        assert torch.equal(fresh(images), model(images))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_memory_bank_moves_to_cuda() -> None:
    model = _model().to("cuda")
    assert model.memory_1.is_cuda
    assert model(_images(1, 3).cuda()).is_cuda


@pytest.mark.parametrize("joint", [False, True])
def test_nearest_memory_matches_brute_force(joint: bool) -> None:
    model = _model("joint_memory" if joint else "full")
    generator = torch.Generator().manual_seed(5)
    for level, (c, s) in enumerate(((64, 16), (128, 8), (256, 4)), start=1):
        setattr(model, f"memory_{level}", torch.rand(6, c, s, s, generator=generator))
    levels = [torch.rand(5, c, s, s, generator=generator) for c, s in ((64, 16), (128, 8), (256, 4))]
    chosen = model.nearest_memory(levels)
    for b in range(5):
        per_level = [[float((levels[l][b] - model.memory[l][n]).abs().sum()) for n in range(6)] for l in range(3)]
        if joint:  # sum over levels of the per-level mean
            joint_distance = [sum(per_level[l][n] / levels[l][b].numel() for l in range(3)) for n in range(6)]
            expected = [min(range(6), key=joint_distance.__getitem__)] * 3
        else:
            expected = [min(range(6), key=per_level[l].__getitem__) for l in range(3)]
        assert [int(c[b]) for c in chosen] == expected


def test_difference_is_zero_for_a_memory_image() -> None:
    memory_images = _images(4, 0)
    model = _model().eval()
    with torch.no_grad():
        _, levels = model.frozen_features(torch.cat([memory_images[2:3], _images(1, 9)]))
        diffs = model.difference([smooth(f) for f in levels])
    for diff in diffs:
        assert diff[0].abs().max() < 1e-5  # the memory image: DI = 0
        assert diff[1].abs().mean() > 1e-3  # any other image: DI > 0


@pytest.mark.parametrize("size", [64, 128])
def test_output_shapes(size: int) -> None:
    model = MemSeg(image_size=size, memory_size=2)
    model.fill_memory(_images(2, 0, size))
    model.eval()
    with torch.no_grad():
        logits = model(_images(3, 1, size).contiguous(memory_format=torch.channels_last))
    assert logits.shape == (3, 2, size, size)
    probs = anomaly_map(logits)
    assert probs.shape == (3, size, size)
    assert torch.equal(model.anomaly_map(logits), probs)
    assert torch.allclose(probs, torch.softmax(logits, dim=1)[:, 1])
    assert float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_every_ablation_trains(name: str) -> None:
    model = _model(name)
    trainable = {k: v.clone() for k, v in model.named_parameters() if v.requires_grad}
    _train_steps(model, steps=1)
    changed = [k for k, v in model.named_parameters() if v.requires_grad and not torch.equal(v, trainable[k])]
    assert changed and any(k.startswith("msff.") for k in changed) and any(k.startswith("decoder.") for k in changed)


def test_no_memory_ignores_the_bank_and_full_does_not() -> None:
    images = _images(2, 11)
    outputs = {}
    for name in ("full", "no_memory"):
        for seed in (0, 1):
            with torch.no_grad():
                outputs[name, seed] = _model(name, memory_seed=seed).eval()(images)
    assert torch.equal(outputs["no_memory", 0], outputs["no_memory", 1])
    assert not torch.allclose(outputs["full", 0], outputs["full", 1])
    assert _model("no_memory").memory_1.shape[0] == 0  # nothing stored


def _perturbed_msff_changes_output(name: str) -> bool:
    """Feed a memory image (DI = 0) and perturb the MSFF weights: the output moves only if the
    MSFF features reach the decoder unmasked."""
    model = _model(name).eval()
    memory_image = _images(4, 0)[1:2]
    with torch.no_grad():
        before = model(memory_image)
        for param in model.msff.parameters():
            param.add_(torch.randn_like(param))
        after = model(memory_image)
    return not torch.allclose(before, after)


def test_spatial_attention_masks_msff_where_di_is_zero() -> None:
    assert not _perturbed_msff_changes_output("full")
    assert _perturbed_msff_changes_output("no_spatial_attention")


def test_structural_ablations_change_the_network() -> None:
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    full, no_ca, no_msff = _model("full", None), _model("no_coord_attention", None), _model("no_msff", None)
    assert any(isinstance(m, CoordinateAttention) for m in full.modules())
    assert not any(isinstance(m, CoordinateAttention) for m in no_ca.modules())
    assert not any(isinstance(m, CoordinateAttention) for m in no_msff.modules())
    assert count(no_msff) < count(no_ca) < count(full)
    # The simulation-only ablations build exactly the full network.
    for name in ("texture_only", "structure_only", "no_foreground_mask", "unscaled", "joint_memory"):
        assert count(_model(name, None)) == count(full)


def test_bad_input_is_refused() -> None:
    model = _model(memory_seed=None)
    with pytest.raises(RuntimeError, match="fill_memory"):
        model(_images(1, 0))
    with pytest.raises(ValueError, match="memory_size=4"):
        model.fill_memory(_images(3, 0))
    model.fill_memory(_images(4, 0))
    with pytest.raises(ValueError, match="built for 64 px"):
        model(torch.rand(1, 3, 96, 96))
    with pytest.raises(ValueError, match="float"):
        model((_images(1, 0) * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="multiple of 32"):
        MemSeg(image_size=48)
    with pytest.raises(ValueError, match="use_memory"):
        MemSeg(image_size=SIZE, use_memory=False)
