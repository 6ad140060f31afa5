"""The ResNet18 encoder (timm, features_only) and where its weights come from: ImageNet through
the Hugging Face hub, a local state-dict file, or none (random init).

A failed ImageNet download is an error that names the offline options; it never falls back to
random weights silently.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from safetensors.torch import load_file
from torch import nn

ARCHITECTURE = "resnet18"
# torchvision's ImageNet weights, as timm hosts them. The reference implementation pinned
# timm 0.5.4, whose `resnet18` default were these; timm >= 0.9 defaults to `a1_in1k` instead.
PRETRAINED_TAG = "tv_in1k"
HUB_ID = f"timm/{ARCHITECTURE}.{PRETRAINED_TAG}"
# stem 64@S/2, layer1 64@S/4, layer2 128@S/8, layer3 256@S/16, layer4 512@S/32
OUT_INDICES = (0, 1, 2, 3, 4)


def _build(pretrained: bool) -> nn.Module:
    return timm.create_model(
        f"{ARCHITECTURE}.{PRETRAINED_TAG}", pretrained=pretrained, features_only=True, out_indices=OUT_INDICES
    )


def _offline_help(cause: BaseException) -> str:
    return (
        f"could not load ImageNet weights for the backbone from the Hugging Face hub ({HUB_ID}): "
        f"{type(cause).__name__}: {cause}\n"
        "Offline options:\n"
        "  1. a local ResNet18 state dict (torchvision or timm keys, .pth/.pt/.safetensors): "
        "--backbone-weights /path/resnet18.pth\n"
        f"  2. pre-populate the Hugging Face cache on a machine with network access: "
        f"`huggingface-cli download {HUB_ID}` (set HF_HOME to choose the cache directory, and the same "
        "HF_HOME here)\n"
        "  3. random initialisation, no pretrained weights (results are not comparable with the paper): "
        "--backbone-weights none"
    )


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any reader failure means: not a state-dict file we can use
        raise ValueError(f"backbone weights file {path} could not be read as a state dict: {err}") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"backbone weights file {path} does not hold a state dict (a mapping of names to tensors)")
    return state


def _short(keys: list[str], limit: int = 8) -> str:
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_weights_file(encoder: nn.Module, path: Path) -> None:
    """Load a ResNet18 state dict into the features_only encoder. timm's features_only keys and
    the plain torchvision/timm classifier keys are the same apart from `fc.*`, which is dropped."""
    state = {k: v for k, v in _read_state_dict(path).items() if not k.startswith("fc.")}
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"backbone weights file {path} is not a ResNet18 state dict: "
            f"missing keys [{_short(missing)}]; unexpected keys [{_short(unexpected)}]"
        )
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        raise ValueError(f"backbone weights file {path} is not a ResNet18 state dict: wrong shapes {_short(wrong)}")
    encoder.load_state_dict(state)


def create_encoder(weights: str) -> nn.Module:
    """ResNet18 with features_only=True, returning [stem, layer1, layer2, layer3, layer4].

    weights: "imagenet" (downloaded once through timm / the Hugging Face hub, then cached),
    "none" (random init), or a path to a ResNet18 state dict (.pth/.pt via torch.load with
    weights_only=True, or .safetensors).
    """
    if weights == "imagenet":
        try:
            return _build(pretrained=True)
        except Exception as err:  # timm / huggingface_hub raise many kinds; all mean "not available"
            raise RuntimeError(_offline_help(err)) from err
    encoder = _build(pretrained=False)
    if weights == "none":
        return encoder
    path = Path(weights)
    if not path.is_file():
        raise ValueError(
            f"backbone weights {weights!r}: expected 'imagenet', 'none' or the path of an existing ResNet18 state-dict file"
        )
    load_weights_file(encoder, path)
    return encoder
