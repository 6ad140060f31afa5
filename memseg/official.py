"""The official MemSeg weights (areylng/MemSeg, `model-<category>.tch`): their key names and
shapes, and the mapping onto our MemSeg in both directions.

The key list is data written down from reading the official model.py (ProjectionNet =
`encoder_segment` (a whole torchvision resnet18, fc and avgpool replaced by Identity),
`decoder_segment` (Decoder), `aggregate` (Aggregate), plus fc1/bn/fc2/bott_conv), not code taken
from it. Modules that exist in the official state dict but never run in its forward are listed in
UNUSED_MODULES and ignored on import. The official convs before a BN carry a bias, ours do not:
BN(conv(x) + b) with running mean mu equals BN(conv(x)) with running mean mu - b in eval mode, and
in training mode the batch mean cancels b, so importing folds each such bias into the running mean.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch

from memseg.model import MemSeg

Shape = tuple[int, ...]
ENCODER, DECODER, AGGREGATE = "encoder_segment.resnet18.", "decoder_segment.", "aggregate."
BN_STATS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

# -- the official key names and shapes ------------------------------------------------------------


def _conv(prefix: str, cin: int, cout: int, k: int, bias: bool = True) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {f"{prefix}.weight": (cout, cin, k, k)}
    if bias:
        shapes[f"{prefix}.bias"] = (cout,)
    return shapes


def _bn(prefix: str, c: int) -> dict[str, Shape]:
    return {f"{prefix}.{name}": (() if name == "num_batches_tracked" else (c,)) for name in BN_STATS}


def _conv_bn(conv: str, bn: str, cin: int, cout: int, k: int = 3, bias: bool = True) -> dict[str, Shape]:
    return _conv(conv, cin, cout, k, bias) | _bn(bn, cout)


def _basic_conv(prefix: str, cin: int, cout: int, k: int) -> dict[str, Shape]:
    """official BasicConv2d: .conv (no bias) + .bn"""
    return _conv_bn(f"{prefix}.conv", f"{prefix}.bn", cin, cout, k, bias=False)


def _inception(prefix: str, c: int) -> dict[str, Shape]:
    """official InceptionB(c): branch3x3 c -> c/2 (3x3), branch3x3dbl_1..3 c -> c/4 (1x1, 3x3, 3x3), branch1x1 c -> c/4."""
    return (
        _basic_conv(f"{prefix}.branch3x3", c, c // 2, 3)
        | _basic_conv(f"{prefix}.branch3x3dbl_1", c, c // 4, 1)
        | _basic_conv(f"{prefix}.branch3x3dbl_2", c // 4, c // 4, 3)
        | _basic_conv(f"{prefix}.branch3x3dbl_3", c // 4, c // 4, 3)
        | _basic_conv(f"{prefix}.branch1x1", c, c // 4, 1)
    )


def _se(prefix: str, c: int, ratio: int) -> dict[str, Shape]:
    """official SE(c, ratio): f = BasicConv2d(c, c, 3), compress 1x1 c -> c/ratio, excitation back."""
    return (
        _basic_conv(f"{prefix}.f", c, c, 3)
        | _conv(f"{prefix}.compress", c, c // ratio, 1)
        | _conv(f"{prefix}.excitation", c // ratio, c, 1)
    )


def _double(prefix: str, cin: int, cout: int) -> dict[str, Shape]:
    """official Sequential(conv, BN, ReLU, conv, BN, ReLU): indices 0, 1, 3, 4."""
    return _conv_bn(f"{prefix}.0", f"{prefix}.1", cin, cout) | _conv_bn(f"{prefix}.3", f"{prefix}.4", cout, cout)


# (official level name, its coordinate-attention module, C, coordinate-attention hidden width)
_LEVELS = (
    ("layer1_64x64", "coordatt128", 64, 8),
    ("layer2_32x32", "coordatt256", 128, 8),
    ("layer3_16x16", "coordatt512", 256, 16),
)
# official decoder stage -> (our up module, our block, up in/out, block in/out)
_STAGES = (
    (1, "16", (512, 256), (512, 256)),
    (2, "8", (256, 128), (256, 128)),
    (3, "4", (128, 64), (128, 64)),
    (4, "2", (64, 32), (96, 48)),
    (5, "1", (48, 48), (48, 24)),
)


def _encoder_shapes() -> dict[str, Shape]:
    """torchvision resnet18 with fc = Identity: every key but fc.*"""
    from torchvision.models import resnet18  # start-up time: torchvision loads only when the shapes are asked for

    return {ENCODER + k: tuple(v.shape) for k, v in resnet18(weights=None).state_dict().items() if not k.startswith("fc.")}


def official_shapes() -> dict[str, Shape]:
    """Every key of an official ProjectionNet state dict (use_se=False, duochidu=True, the
    released configuration) with its shape."""
    shapes = _encoder_shapes()
    for stage, _, (up_in, up_out), (db_in, db_out) in _STAGES:
        shapes |= _conv_bn(f"{DECODER}up{stage}.1", f"{DECODER}up{stage}.2", up_in, up_out)
        shapes |= _double(f"{DECODER}db{stage}", db_in, db_out)
        shapes |= _conv_bn(f"{DECODER}db{stage}_shor_cut.0", f"{DECODER}db{stage}_shor_cut.1", db_in, db_out)
    shapes |= _se(f"{DECODER}se", 32, 4) | _bn(f"{DECODER}res_bn_relu.0", 24)
    shapes |= _conv_bn(f"{DECODER}final_out.0", f"{DECODER}final_out.1", 24, 24) | _conv(f"{DECODER}final_out.3", 24, 2, 3)
    for index, (level, coord, c, hidden) in enumerate(_LEVELS, start=1):
        shapes |= _inception(f"{AGGREGATE}inception{index}", c) | _se(f"{AGGREGATE}se{index}", 2 * c, 4)
        shapes |= _conv_bn(f"{AGGREGATE}{level}_1.0", f"{AGGREGATE}{level}_1.1", 2 * c, 2 * c)
        shapes |= _double(f"{AGGREGATE}{level}_2", 2 * c, c)
        shapes |= _conv_bn(f"{AGGREGATE}{coord}.conv1", f"{AGGREGATE}{coord}.bn1", 2 * c, hidden, k=1)
        shapes |= _conv(f"{AGGREGATE}{coord}.conv_h", hidden, 2 * c, 1) | _conv(f"{AGGREGATE}{coord}.conv_w", hidden, 2 * c, 1)
    shapes |= _conv_bn(f"{AGGREGATE}layer3_up.1", f"{AGGREGATE}layer3_up.2", 256, 128)
    shapes |= _conv_bn(f"{AGGREGATE}layer2_up.1", f"{AGGREGATE}layer2_up.2", 128, 64)
    shapes |= {"fc1.weight": (64, 256), "fc1.bias": (64,), "fc2.weight": (2, 128), "fc2.bias": (2,)} | _bn("bn", 128)
    shapes |= _conv_bn("bott_conv.0", "bott_conv.1", 512, 256, bias=False)
    return shapes


# Official modules present in the state dict that the official forward never calls.
UNUSED_MODULES: tuple[str, ...] = (
    *(f"{DECODER}db{stage}_shor_cut" for stage in range(1, 6)),
    f"{DECODER}se",
    f"{DECODER}res_bn_relu",
    *(f"{AGGREGATE}inception{index}" for index in range(1, 4)),
    *(f"{AGGREGATE}se{index}" for index in range(1, 4)),
    "fc1",
    "bn",
    "fc2",
    "bott_conv",
)


# -- the mapping ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvMap:
    """One official conv (and the BN right after it, if any) and where it lives in our model."""

    official_conv: str
    ours_conv: str
    official_bn: str | None = None
    ours_bn: str | None = None


def conv_map() -> tuple[ConvMap, ...]:
    """Every official conv the forward uses (encoder aside), with its BN, mapped to ours."""
    maps: list[ConvMap] = []
    for index, (level, coord, _, _) in enumerate(_LEVELS):
        ours = f"msff.blocks.{index}"
        maps += [
            ConvMap(f"{AGGREGATE}{level}_1.0", f"{ours}.conv_in.0", f"{AGGREGATE}{level}_1.1", f"{ours}.conv_in.1"),
            ConvMap(f"{AGGREGATE}{level}_2.0", f"{ours}.conv_out.0.0", f"{AGGREGATE}{level}_2.1", f"{ours}.conv_out.0.1"),
            ConvMap(f"{AGGREGATE}{level}_2.3", f"{ours}.conv_out.1.0", f"{AGGREGATE}{level}_2.4", f"{ours}.conv_out.1.1"),
            ConvMap(
                f"{AGGREGATE}{coord}.conv1",
                f"{ours}.attention.squeeze.0",
                f"{AGGREGATE}{coord}.bn1",
                f"{ours}.attention.squeeze.1",
            ),
            ConvMap(f"{AGGREGATE}{coord}.conv_h", f"{ours}.attention.attend_h"),
            ConvMap(f"{AGGREGATE}{coord}.conv_w", f"{ours}.attention.attend_w"),
        ]
    maps += [
        ConvMap(f"{AGGREGATE}layer3_up.1", "msff.fuse_32.1", f"{AGGREGATE}layer3_up.2", "msff.fuse_32.2"),
        ConvMap(f"{AGGREGATE}layer2_up.1", "msff.fuse_21.1", f"{AGGREGATE}layer2_up.2", "msff.fuse_21.2"),
    ]
    for stage, ours, _, _ in _STAGES:
        up, block, db = f"decoder.up_{ours}", f"decoder.block_{ours}", f"{DECODER}db{stage}"
        maps += [
            ConvMap(f"{DECODER}up{stage}.1", f"{up}.1", f"{DECODER}up{stage}.2", f"{up}.2"),
            ConvMap(f"{db}.0", f"{block}.0.0", f"{db}.1", f"{block}.0.1"),
            ConvMap(f"{db}.3", f"{block}.1.0", f"{db}.4", f"{block}.1.1"),
        ]
    maps += [
        ConvMap(f"{DECODER}final_out.0", "decoder.head.0.0", f"{DECODER}final_out.1", "decoder.head.0.1"),
        ConvMap(f"{DECODER}final_out.3", "decoder.head.1"),
    ]
    return tuple(maps)


def is_unused(key: str) -> bool:
    return any(key == m or key.startswith(m + ".") for m in UNUSED_MODULES)


@dataclass(frozen=True)
class EncoderDistance:
    """One tensor of conv1-layer3 (its name in a ResNet18, e.g. "layer1.0.bn1.running_var"): the
    largest absolute difference between the official `encoder_segment`'s value and the feature
    encoder's (the backbone it was built from). Weights frozen in training stay at 0; BN running
    statistics that moved in train mode do not."""

    name: str
    max_abs: float

    @property
    def is_statistic(self) -> bool:
        return self.name.endswith(("running_mean", "running_var"))


@dataclass(frozen=True)
class OfficialImport:
    """What an import did: each official key that landed -> our key, and the ignored ones; with two
    encoders, how far the checkpoint's conv1-layer3 is from the feature encoder's backbone."""

    landed: dict[str, str]
    ignored: tuple[str, ...]
    folded_biases: int  # conv biases folded into the next BN's running mean
    encoder_distance: tuple[EncoderDistance, ...] = ()  # every float tensor of conv1-layer3, in state-dict order


def check_official_state(state: Mapping[str, object], source: str = "state dict") -> None:
    """A ValueError naming what is wrong unless `state` has exactly the official keys and shapes."""
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source} is not a state dict (a mapping of names to tensors)")
    expected = official_shapes()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    tensors = cast(Mapping[str, torch.Tensor], state)
    wrong = [
        f"{k} {tuple(tensors[k].shape)} (expected {expected[k]})"
        for k in expected
        if k in tensors and tuple(tensors[k].shape) != expected[k]
    ]
    if missing or unexpected or wrong:

        def short(items: list[str]) -> str:
            return ", ".join(items[:6]) + (f" ... and {len(items) - 6} more" if len(items) > 6 else "")

        raise ValueError(
            f"{source} is not an official MemSeg state dict (areylng/MemSeg model-<category>.tch): "
            f"missing [{short(missing)}]; unexpected [{short(unexpected)}]; wrong shapes [{short(wrong)}]"
        )


def _check_model(model: MemSeg) -> None:
    if not (model.use_memory and model.msff.use_msff and model.use_spatial_attention):
        raise ValueError("official weights fit the full network only: build MemSeg with memory, MSFF and spatial attention on")
    if not all(block.attention is not None for block in model.msff.blocks):
        raise ValueError("official weights fit the full network only: coordinate attention must be on")


def _deep_encoder_prefix(model: MemSeg) -> str:
    """Our keys of the official `encoder_segment`: the segment encoder, or the one encoder (frozen_bn)."""
    return "encoder." if model.segment_encoder is None else "segment_encoder."


def import_official(model: MemSeg, state: Mapping[str, torch.Tensor]) -> OfficialImport:
    """Load an official state dict into `model` (the full network): `encoder_segment` into the
    segment encoder (with one encoder, frozen_bn, into that one). A two-encoder model's feature
    encoder is not in the official weights and keeps the backbone it was built with (officially
    ImageNet's). The memory bank is not part of the official weights either; fill it afterwards
    (`fill_memory`)."""
    check_official_state(state)
    _check_model(model)
    ours = model.state_dict()
    new: dict[str, torch.Tensor] = {}
    landed: dict[str, str] = {}
    folded = 0

    def put(official_key: str, our_key: str, value: torch.Tensor) -> None:
        new[our_key] = value.detach().to(ours[our_key].dtype).clone()
        landed[official_key] = our_key

    deep = _deep_encoder_prefix(model)
    for key in state:
        if key.startswith(ENCODER):
            put(key, deep + key[len(ENCODER) :], state[key])
    for m in conv_map():
        put(f"{m.official_conv}.weight", f"{m.ours_conv}.weight", state[f"{m.official_conv}.weight"])
        if m.official_bn is None:
            put(f"{m.official_conv}.bias", f"{m.ours_conv}.bias", state[f"{m.official_conv}.bias"])
            continue
        for name in BN_STATS:
            put(f"{m.official_bn}.{name}", f"{m.ours_bn}.{name}", state[f"{m.official_bn}.{name}"])
        bias_key = f"{m.official_conv}.bias"
        if bias_key in state:
            new[f"{m.ours_bn}.running_mean"] = new[f"{m.ours_bn}.running_mean"] - state[bias_key].to(
                new[f"{m.ours_bn}.running_mean"].dtype
            )
            landed[bias_key] = f"{m.ours_bn}.running_mean"
            folded += 1
    # The feature encoder of a two-encoder model is not in the official weights (officially
    # `Get_feature`, ImageNet's ResNet18): it stays as the model was built.
    not_written = sorted(
        k
        for k in set(ours) - set(new) - {"memory_1", "memory_2", "memory_3", "memory_filled"}
        if not (model.segment_encoder is not None and k.startswith("encoder."))
    )
    if not_written:  # a gap in the mapping, not a user error
        raise RuntimeError(f"official mapping leaves our keys unset: {not_written[:6]}")
    model.load_state_dict({**ours, **new})
    ignored = tuple(sorted(k for k in state if k not in landed))
    return OfficialImport(landed=landed, ignored=ignored, folded_biases=folded, encoder_distance=encoder_distance(model, state))


def encoder_distance(model: MemSeg, state: Mapping[str, torch.Tensor]) -> tuple[EncoderDistance, ...]:
    """Max |official encoder_segment - our feature encoder| per conv1-layer3 tensor (the feature
    encoder of a two-encoder model holds the backbone it was built with; () with one encoder).
    num_batches_tracked counts, it is no weight or statistic, and is left out."""
    if model.segment_encoder is None:
        return ()
    feature = model.encoder.state_dict()
    return tuple(
        EncoderDistance(name, float((state[ENCODER + name].double() - value.detach().cpu().double()).abs().max()))
        for name, value in feature.items()
        if not name.endswith("num_batches_tracked")
    )


def export_official(model: MemSeg) -> dict[str, torch.Tensor]:
    """Our model in the official layout: the mapped keys from ours (conv biases before BN are 0,
    the running mean unchanged; `encoder_segment` from the segment encoder, or from the one encoder
    of frozen_bn), every unused official module zero-filled. A feature encoder has no place in it."""
    _check_model(model)
    ours = model.state_dict()
    state = {
        key: torch.zeros(shape, dtype=torch.long if key.endswith("num_batches_tracked") else torch.float32)
        for key, shape in official_shapes().items()
    }
    deep = _deep_encoder_prefix(model)
    for key in state:
        if key.startswith(ENCODER):
            state[key] = ours[deep + key[len(ENCODER) :]].detach().clone()
    for m in conv_map():
        state[f"{m.official_conv}.weight"] = ours[f"{m.ours_conv}.weight"].detach().clone()
        if m.official_bn is None:
            state[f"{m.official_conv}.bias"] = ours[f"{m.ours_conv}.bias"].detach().clone()
            continue
        for name in BN_STATS:
            state[f"{m.official_bn}.{name}"] = ours[f"{m.ours_bn}.{name}"].detach().clone()
    return state


def read_official(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict in an official weights file, loaded with torch.load(weights_only=True) (a
    pickle carrying code is refused unrun). A ValueError names the file and what was expected."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(
            f"official weights file {file} does not exist; expected a model-<category>.tch state dict from areylng/MemSeg"
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # any reader failure (not a torch file, a pickle with code) means: unusable
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"official weights file {file} could not be read with torch.load(weights_only=True): {first_line}"
        ) from err
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    check_official_state(state, source=f"official weights file {file}")
    return dict(state)
