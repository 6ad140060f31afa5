"""The encoder's weights: ImageNet fails fast and helpfully offline, files load exactly, bad files
are refused with the file and the keys named."""

from __future__ import annotations

import time

import huggingface_hub
import pytest
import timm
import torch
from safetensors.torch import save_file

from memseg.backbone import HUB_ID, create_encoder


def test_encoder_pyramid_shapes() -> None:
    encoder = create_encoder("none")
    feats = encoder(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]


def test_imagenet_offline_names_the_options(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    start = time.perf_counter()
    with pytest.raises(RuntimeError) as info:
        create_encoder("imagenet")
    assert time.perf_counter() - start < 10
    message = str(info.value)
    for option in ("--backbone-weights /path/resnet18.pth", "--backbone-weights none", "HF_HOME", HUB_ID):
        assert option in message


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_file_loads_exactly(tmp_path, suffix: str) -> None:
    torch.manual_seed(1)
    classifier = timm.create_model("resnet18", pretrained=False)  # plain keys, fc.* included
    for module in classifier.modules():  # make running stats differ from the defaults too
        if isinstance(module, torch.nn.BatchNorm2d):
            assert module.running_mean is not None
            module.running_mean.uniform_(-1, 1)
    state = classifier.state_dict()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    loaded = create_encoder(str(path)).state_dict()
    assert set(loaded) == {k for k in state if not k.startswith("fc.")}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


def test_wrong_architecture_file_is_refused(tmp_path) -> None:
    path = tmp_path / "resnet34.pth"
    torch.save(timm.create_model("resnet34", pretrained=False).state_dict(), path)
    with pytest.raises(ValueError, match="resnet34.pth.*unexpected keys.*layer1.2"):
        create_encoder(str(path))


def test_wrong_shapes_and_garbage_are_refused(tmp_path) -> None:
    state = create_encoder("none").state_dict()
    state["conv1.weight"] = torch.zeros(32, 3, 7, 7)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    with pytest.raises(ValueError, match="wrong.pth.*conv1.weight"):
        create_encoder(str(wrong))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth"):
        create_encoder(str(garbage))
    with pytest.raises(ValueError, match="imagenet"):
        create_encoder(str(tmp_path / "missing.pth"))
