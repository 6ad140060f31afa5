"""Official weights import: a state dict with the official key names and shapes (memseg.official
fixture, written from reading areylng/MemSeg model.py) lands key by key, the unused modules are
named and ignored, and ours -> official -> ours is the identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from memseg.__main__ import main
from memseg.backbone import create_encoder
from memseg.data.synthetic import generate
from memseg.model import MemSeg
from memseg.official import (
    ENCODER,
    UNUSED_MODULES,
    conv_map,
    export_official,
    import_official,
    is_unused,
    official_shapes,
)

SIZE = 64


def _random_official(seed: int) -> dict[str, torch.Tensor]:
    """Official keys and shapes with random values of sane size (positive variances)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_shapes().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.randint(0, 100, shape, generator=generator)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith(".weight") and len(shape) == 1:  # BN scale
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        else:
            state[key] = 0.05 * torch.randn(shape, generator=generator)
    return state


def _model() -> MemSeg:
    return MemSeg(image_size=SIZE, memory_size=3).eval()


def test_fixture_names_the_official_modules() -> None:
    shapes = official_shapes()
    assert not any(key.startswith("encoder_segment.resnet18.fc") for key in shapes)
    assert shapes["encoder_segment.resnet18.layer4.1.bn2.running_var"] == (512,)
    assert shapes["decoder_segment.db4.0.weight"] == (48, 96, 3, 3)
    assert shapes["decoder_segment.final_out.3.weight"] == (2, 24, 3, 3)
    assert shapes["aggregate.coordatt512.conv1.weight"] == (16, 512, 1, 1)
    assert shapes["aggregate.layer3_16x16_1.0.bias"] == (512,)
    for module in UNUSED_MODULES:
        assert any(key.startswith(module + ".") for key in shapes), module


def test_every_used_official_key_lands_and_the_unused_are_ignored() -> None:
    state = _random_official(0)
    model = _model()
    report = import_official(model, state)
    assert set(report.landed) | set(report.ignored) == set(state)
    assert set(report.ignored) == {k for k in state if is_unused(k)}
    assert report.folded_biases == sum(m.official_bn is not None for m in conv_map())
    ours = model.state_dict()
    folded = {f"{m.ours_bn}.running_mean": m for m in conv_map() if m.official_bn is not None}
    for official_key, our_key in report.landed.items():
        if our_key in folded:  # BN running mean minus the official conv bias
            m = folded[our_key]
            expected = state[f"{m.official_bn}.running_mean"] - state[f"{m.official_conv}.bias"]
            assert torch.allclose(ours[our_key], expected), official_key
        else:
            assert torch.equal(ours[our_key], state[official_key].to(ours[our_key].dtype)), official_key
    # Every parameter and buffer of ours but the bank and the feature encoder (officially ImageNet's
    # Get_feature, not in the file) came from the official file; encoder_segment is the segment encoder.
    written = set(report.landed.values())
    assert {k for k in set(ours) - written if not k.startswith("encoder.")} == {
        "memory_1",
        "memory_2",
        "memory_3",
        "memory_filled",
    }
    assert all(k.startswith("segment_encoder.") for k in written if "encoder" in k)


def test_a_folded_bias_computes_what_the_official_conv_plus_bn_computes() -> None:
    state = _random_official(1)
    model = _model()
    import_official(model, state)
    x = torch.randn(2, 512, 2, 2)

    def up(t):
        return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)

    p = "decoder_segment.up1"
    official = F.relu(
        F.batch_norm(
            F.conv2d(up(x), state[f"{p}.1.weight"], state[f"{p}.1.bias"], padding=1),
            state[f"{p}.2.running_mean"],
            state[f"{p}.2.running_var"],
            state[f"{p}.2.weight"],
            state[f"{p}.2.bias"],
        )
    )
    with torch.no_grad():
        assert torch.allclose(model.decoder.up_16(x), official, atol=1e-5)


@pytest.mark.parametrize("segment_encoder", [True, False])
def test_round_trip_ours_official_ours_gives_identical_outputs(segment_encoder: bool) -> None:
    """encoder_segment is the segment encoder (frozen_bn: the one encoder); the feature encoder
    is not in the official weights, so both models are built from the same backbone (seed)."""
    torch.manual_seed(0)
    first = MemSeg(image_size=SIZE, memory_size=3, segment_encoder=segment_encoder).eval()
    import_official(first, _random_official(2))
    memory = torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    first.fill_memory(memory)
    torch.manual_seed(0)
    second = MemSeg(image_size=SIZE, memory_size=3, segment_encoder=segment_encoder).eval()
    import_official(second, export_official(first))
    second.fill_memory(memory)
    images = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(first(images), second(images))
    assert all(torch.equal(v, second.state_dict()[k]) for k, v in first.state_dict().items())


def test_a_wrong_state_dict_is_refused_naming_what_differs() -> None:
    state = _random_official(0)
    del state["decoder_segment.db1.0.weight"]
    state["decoder_segment.up1.1.weight"] = torch.zeros(1)
    with pytest.raises(
        ValueError, match=r"missing \[decoder_segment.db1.0.weight\].*wrong shapes \[decoder_segment.up1.1.weight"
    ):
        import_official(_model(), state)
    with pytest.raises(ValueError, match="full network"):
        import_official(MemSeg(image_size=SIZE, memory_size=3, use_msff=False), _random_official(0))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    # hazelnut: the category table's memory is 30, so 30 images fill the bank and 3 are left to train on
    generate(root, categories=("hazelnut",), image_size=SIZE, n_train=33, n_test_good=3, n_test_defect_per_type=2)
    return root


def test_cli_imports_rebuilds_the_bank_and_evaluates(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    state = export_official(MemSeg(image_size=SIZE, memory_size=30))
    state["decoder_segment.db1.0.bias"] = 0.1 * torch.randn(256)  # a bias to fold
    weights = tmp_path / "model-hazelnut.tch"
    torch.save(state, weights)
    args = [
        "import-official",
        "--weights",
        str(weights),
        "--category",
        "hazelnut",
        "--data-root",
        str(data_root),
        "--dataset",
        "synthetic",
        "--image-size",
        str(SIZE),
        "--device",
        "cpu",
        "--backbone-weights",
        "none",
        "--out",
        str(tmp_path / "out"),
        "--json",
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["official_import"]["landed"] == len(official_shapes()) - len(result["official_import"]["ignored"])
    assert all(is_unused(k) for k in result["official_import"]["ignored"])
    assert 0.0 <= result["metrics"]["image_auroc"] <= 1.0 and 0.0 <= result["metrics"]["pixel_auroc"] <= 1.0
    assert (Path(result["artefacts_dir"]) / "model.safetensors").is_file()


def test_cli_errors_are_one_line_and_exit_2(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_state_dict = tmp_path / "list.tch"
    torch.save([1, 2, 3], not_a_state_dict)
    resnet_only = tmp_path / "resnet.tch"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, resnet_only)
    garbage = tmp_path / "garbage.tch"
    garbage.write_bytes(b"not a torch file")
    for path, reason in (
        (tmp_path / "missing.tch", "does not exist"),
        (not_a_state_dict, "not a state dict"),
        (resnet_only, "not an official MemSeg state dict"),
        (garbage, "could not be read"),
    ):
        code = main(["import-official", "--weights", str(path), "--category", "hazelnut", "--data-root", str(data_root)])
        err = capsys.readouterr().err
        assert code == 2, path
        assert reason in err and str(path.name) in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


# The official checkpoint's encoder_segment after training in train mode: frozen weights, moved BN
# statistics. Here: the backbone's values, two statistics moved by known amounts.
MOVED = {"layer1.0.bn1.running_mean": 0.25, "layer3.1.bn2.running_var": 1.5}


def _backbone_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(5)
    backbone = create_encoder("none").state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(backbone, path)
    return path, backbone


def _official_trained_from(backbone: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = _random_official(6)
    for name, value in backbone.items():
        state[ENCODER + name] = value.clone()
    for name, shift in MOVED.items():
        state[ENCODER + name] = state[ENCODER + name] + shift
    return state


def test_import_reports_how_far_the_segment_encoder_is_from_the_feature_encoders_backbone(tmp_path: Path) -> None:
    """encoder_segment lands in the segment encoder; the feature encoder keeps the backbone it was
    built from (officially ImageNet's Get_feature), and the report gives max |difference| per
    conv1-layer3 tensor: the moved statistics by their shift, everything else 0."""
    path, backbone = _backbone_file(tmp_path)
    state = _official_trained_from(backbone)
    model = MemSeg(image_size=SIZE, memory_size=3, backbone_weights=str(path)).eval()
    report = import_official(model, state)
    distance = {d.name: d.max_abs for d in report.encoder_distance}
    assert set(distance) == {k for k in backbone if not k.startswith("layer4.") and not k.endswith("num_batches_tracked")}
    for name, value in distance.items():
        assert value == pytest.approx(MOVED.get(name, 0.0), rel=1e-6, abs=0), name
    assert {d.name for d in report.encoder_distance if d.is_statistic} >= set(MOVED)
    feature, segment = model.encoder.state_dict(), model.segment_encoder.state_dict()
    assert all(torch.equal(feature[k], backbone[k]) for k in feature)
    assert all(torch.equal(segment[k], state[ENCODER + k]) for k in segment)
    assert import_official(MemSeg(image_size=SIZE, memory_size=3, segment_encoder=False), state).encoder_distance == ()


def test_cli_takes_the_feature_encoder_from_backbone_weights_and_prints_the_distance(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, backbone = _backbone_file(tmp_path)
    weights = tmp_path / "model-hazelnut.tch"
    torch.save(_official_trained_from(backbone), weights)
    common = ["import-official", "--weights", str(weights), "--category", "hazelnut", "--data-root", str(data_root)]
    common += ["--dataset", "synthetic", "--image-size", str(SIZE), "--device", "cpu", "--backbone-weights", str(path)]
    assert main([*common, "--json"]) == 0
    distance = json.loads(capsys.readouterr().out)["official_import"]["encoder_distance"]
    assert {k for k, v in distance.items() if v > 0} == set(MOVED)
    assert distance["layer1.0.bn1.running_mean"] == pytest.approx(0.25, rel=1e-6)
    assert main(common) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps to the terminal's width
    assert "layer3.1.bn2.running_var" in out and "layer1.0.bn1.running_mean" in out
    assert "weights: 45 tensors, 0 differ" in out and "BN running statistics: 30 tensors, 2 differ, largest 1.5" in out
