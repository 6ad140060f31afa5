"""The MemSeg network as the official code builds it (areylng/MemSeg model.py and the inference
path of run_training.py; docs/model.md): two ResNet18 encoders (a frozen, always-eval feature
encoder for the stem, layer1-3 and the memory bank; a segment encoder whose layer4 is trained and
whose frozen conv1-layer3 BatchNorms follow train()/eval()), a memory bank of normal features
matched per level, multi-scale feature fusion (MSFF) with coordinate attention, spatial
attention from the scaled difference information, and the official U-Net decoder.

`MemSeg.forward` takes float images in [0, 1] and normalises them itself, so no caller can forget
the ImageNet statistics; it returns 2-channel logits at the input size. Each formula below is
pinned by a test in tests/memseg/test_model_formulas.py (docs/faithfulness.md).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from memseg.backbone import create_encoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LEVEL_CHANNELS = (64, 128, 256)  # layer1 @ S/4, layer2 @ S/8, layer3 @ S/16
LEVEL_STRIDES = (4, 8, 16)
_FROZEN = ("conv1", "bn1", "act1", "maxpool", "layer1", "layer2", "layer3")  # timm ResNet names


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """`x` in float32, or as it is when wider: the bank comparison and the loss run in float32 under
    bf16 autocast, and in float64 when a conformance test runs the whole model in float64."""
    return x if x.dtype == torch.float64 else x.float()


def anomaly_map(logits: torch.Tensor) -> torch.Tensor:
    """Per-pixel anomaly probability, (B, S, S): softmax over the 2 logit channels, channel 1."""
    return torch.softmax(at_least_float32(logits), dim=1)[:, 1]


def smooth(feats: torch.Tensor) -> torch.Tensor:
    """3x3 average pool, stride 1, zero padding counted: the official `AvgPool2d(3, 1, 1)` applied
    to bank and input features before matching."""
    return F.avg_pool2d(feats, kernel_size=3, stride=1, padding=1)


def spatial_attention(diffs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Spatial attention maps [M1, M2, M3] (each (B, 1, h_l, w_l)) from the scaled DI per level.

    m_l = mean over channels of DI_l;  M3 = m3,  M2 = m2 * up(m3),  M1 = m1 * up(m2) * up(m3),
    `up` bilinear with align_corners=False to the level's own size (the official code interpolates
    to the fixed sizes 64 and 32, which are these sizes at 256 px). m3 enters M1 once.
    """
    m1, m2, m3 = (diff.mean(dim=1, keepdim=True) for diff in diffs)

    def up(m: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(m, size=like.shape[-2:], mode="bilinear", align_corners=False)

    return [m1 * up(m2, m1) * up(m3, m1), m2 * up(m3, m2), m3]


class ConvBNReLU(nn.Sequential):
    """3x3 (or k x k) conv + BN + ReLU. The conv has no bias: a bias before BN is cancelled by
    the BN's mean (the official convs carry one; importing folds it into the running mean)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UpConv(nn.Sequential):
    """x2 bilinear upsample (align_corners=True, as the official decoder and MSFF), then 3x3
    conv + BN + ReLU. Indices .1 (conv) and .2 (BN) are the official ones."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class DoubleConv(nn.Sequential):
    """Two 3x3 conv + BN + ReLU: in -> out -> out."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(ConvBNReLU(in_channels, out_channels), ConvBNReLU(out_channels, out_channels))


class CoordinateAttention(nn.Module):
    """Coordinate attention (Hou et al., CVPR 2021): pool along H and along W, a shared 1x1
    conv + BN + h-swish, then one 1x1 conv + sigmoid per direction. Returns the two attention
    maps, (B, C, H, 1) and (B, C, 1, W), whose product reweights a feature map."""

    def __init__(self, channels: int, reduction: int = 32, min_hidden: int = 8) -> None:
        super().__init__()
        hidden = max(min_hidden, channels // reduction)
        self.squeeze = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.Hardswish())
        self.attend_h = nn.Conv2d(hidden, channels, 1)
        self.attend_w = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = x.shape[-2:]
        pooled_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1)
        pooled_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        hidden = self.squeeze(torch.cat([pooled_h, pooled_w], dim=2))  # (B, hidden, H + W, 1)
        hidden_h, hidden_w = torch.split(hidden, [height, width], dim=2)
        return torch.sigmoid(self.attend_h(hidden_h)), torch.sigmoid(self.attend_w(hidden_w.transpose(2, 3)))


class MSFFBlock(nn.Module):
    """One level of MSFF: [F, DI] (2C) -> 3x3 conv (2C), reweighted by coordinate attention
    computed from [F, DI] itself -> two 3x3 convs down to C channels."""

    def __init__(self, channels: int, use_coord_attention: bool) -> None:
        super().__init__()
        self.conv_in = ConvBNReLU(2 * channels, 2 * channels)
        self.attention = CoordinateAttention(2 * channels) if use_coord_attention else None
        self.conv_out = DoubleConv(2 * channels, channels)

    def forward(self, concat: torch.Tensor) -> torch.Tensor:
        feats = self.conv_in(concat)
        if self.attention is not None:
            attn_h, attn_w = self.attention(concat)
            feats = feats * attn_h * attn_w
        return self.conv_out(feats)


class MSFF(nn.Module):
    """Multi-scale feature fusion over the three levels, then top-down: level 3 upsampled x2 +
    conv to 128 is added to level 2, and the result upsampled + conv to 64 is added to level 1.

    use_msff=False (ablation no_msff): each level is only a 1x1 conv + BN + ReLU projection of
    [F, DI] to C channels; no coordinate attention, no top-down fusion.
    """

    def __init__(self, use_msff: bool = True, use_coord_attention: bool = True) -> None:
        super().__init__()
        self.use_msff = use_msff
        if use_msff:
            self.blocks = nn.ModuleList(MSFFBlock(c, use_coord_attention) for c in LEVEL_CHANNELS)
            self.fuse_32 = UpConv(LEVEL_CHANNELS[2], LEVEL_CHANNELS[1])
            self.fuse_21 = UpConv(LEVEL_CHANNELS[1], LEVEL_CHANNELS[0])
        else:
            self.blocks = nn.ModuleList(ConvBNReLU(2 * c, c, kernel_size=1) for c in LEVEL_CHANNELS)

    def forward(self, concats: list[torch.Tensor]) -> list[torch.Tensor]:
        level1, level2, level3 = (block(x) for block, x in zip(self.blocks, concats))
        if self.use_msff:
            level2 = level2 + self.fuse_32(level3)  # (B, 256, S/16) -> (B, 128, S/8)
            level1 = level1 + self.fuse_21(level2)  # (B, 128, S/8) -> (B, 64, S/4)
        return [level1, level2, level3]


class Decoder(nn.Module):
    """The official U-Net decoder, from layer4 (512 @ S/32) to 2-channel logits at S:
    up + conv to 256, concat level 3, two conv (256); up to 128, concat level 2, two conv (128);
    up to 64, concat level 1, two conv (64); up to 32, concat the stem (64 @ S/2), two conv (48);
    up + conv 48; two conv (24); head conv 24 + BN + ReLU, then a bare conv 24 -> 2."""

    def __init__(self) -> None:
        super().__init__()
        self.up_16, self.block_16 = UpConv(512, 256), DoubleConv(256 + 256, 256)
        self.up_8, self.block_8 = UpConv(256, 128), DoubleConv(128 + 128, 128)
        self.up_4, self.block_4 = UpConv(128, 64), DoubleConv(64 + 64, 64)
        self.up_2, self.block_2 = UpConv(64, 32), DoubleConv(32 + 64, 48)
        self.up_1, self.block_1 = UpConv(48, 48), DoubleConv(48, 24)
        self.head = nn.Sequential(ConvBNReLU(24, 24), nn.Conv2d(24, 2, kernel_size=3, padding=1))

    def forward(self, deepest: torch.Tensor, fused: list[torch.Tensor], stem: torch.Tensor) -> torch.Tensor:
        level1, level2, level3 = fused
        x = self.block_16(torch.cat([self.up_16(deepest), level3], dim=1))  # (B, 512, S/16) -> 256
        x = self.block_8(torch.cat([self.up_8(x), level2], dim=1))  # (B, 256, S/8) -> 128
        x = self.block_4(torch.cat([self.up_4(x), level1], dim=1))  # (B, 128, S/4) -> 64
        x = self.block_2(torch.cat([self.up_2(x), stem], dim=1))  # (B, 96, S/2) -> 48
        x = self.block_1(self.up_1(x))  # (B, 48, S) -> 24
        return self.head(x)  # (B, 2, S, S)


class MemSeg(nn.Module):
    """MemSeg. Call `fill_memory(normal_images)` once before training (unless use_memory is
    off), then `forward(images) -> logits (B, 2, S, S)` with images float (B, 3, S, S) in [0, 1],
    S = image_size.

    Per level l (layer1-3), with F_l the raw frozen features and F_s,l = smooth(F_l):
      - memory matching, per level: the item n minimising sum |F_s,l - bank_l[n]| (joint_memory:
        one item minimising the sum over levels of the per-level MEAN |F_s - M|, the rule before revision 2);
      - DI_l = di_scale * |F_s,l - bank_l[n_l]|;
      - MSFF input [feature_scale * F_l, DI_l];
      - the fused level times its spatial attention map M_l (see `spatial_attention`).
    The stem given to the decoder is the ReLU output of bn1 (what the official bn1 hook holds
    once torchvision's in-place ReLU has run).

    Two encoders (segment_encoder=True, the official build): `encoder`, the feature encoder (the
    official `Get_feature`: stem, layer1-3, always eval, no layer4), gives the stem, F1-F3 and the
    memory bank; `segment_encoder` (the official `encoder_segment`) runs conv1-layer3 again with
    frozen weights but BatchNorms that follow train()/eval() (batch statistics and moving running
    statistics in training, as the official ProjectionNet, which has no train() override), then
    its trainable layer4. Both start from the same backbone weights. segment_encoder=False
    (ablation frozen_bn, revision 2's network): one encoder, conv1-layer3 always eval, whose
    layer4 is the trainable one.

    Initialisation: PyTorch's defaults everywhere outside the encoder. The official `Init`
    methods loop over top-level containers and never reach a conv or BN, so that is what
    the official network was trained from (tests/memseg/test_model_formulas.py).
    """

    # Buffers and the encoder's stages are nn.Module attributes; typed here for the checker.
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor
    memory_1: torch.Tensor
    memory_2: torch.Tensor
    memory_3: torch.Tensor
    memory_filled: torch.Tensor
    encoder: Any  # timm's features_only ResNet18: its stages (conv1, layer1, ...) are attributes
    segment_encoder: Any  # the same kind, or None with one encoder

    def __init__(
        self,
        image_size: int = 256,
        memory_size: int = 30,
        use_memory: bool = True,
        use_msff: bool = True,
        use_coord_attention: bool = True,
        use_spatial_attention: bool = True,
        di_scale: float = 100.0,
        feature_scale: float = 100.0,
        backbone_weights: str = "none",
        joint_memory: bool = False,
        segment_encoder: bool = True,
    ) -> None:
        super().__init__()
        if use_spatial_attention and not use_memory:
            raise ValueError("spatial attention is computed from the memory difference; it needs use_memory=True")
        if memory_size < 1:
            raise ValueError(f"memory_size must be >= 1, got {memory_size}")
        if image_size < 32 or image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32 and >= 32, got {image_size}")
        if not (di_scale > 0 and feature_scale > 0):
            raise ValueError(f"di_scale and feature_scale must be > 0, got {di_scale} and {feature_scale}")
        self.image_size = image_size
        self.memory_size = memory_size
        self.use_memory = use_memory
        self.use_spatial_attention = use_spatial_attention
        self.di_scale = float(di_scale)
        self.feature_scale = float(feature_scale)
        self.joint_memory = joint_memory
        self.encoder = create_encoder(backbone_weights)
        self.segment_encoder = None
        if segment_encoder:
            # A copy, not a second create_encoder: the same weights whatever backbone_weights says
            # (with "none" a second build would be a second random init), and no second download.
            self.segment_encoder = copy.deepcopy(self.encoder)
            del self.encoder.layer4  # the feature encoder's layer4 would never run
        for name in _FROZEN:
            getattr(self.encoder, name).requires_grad_(False)
            if self.segment_encoder is not None:
                getattr(self.segment_encoder, name).requires_grad_(False)
        self.msff = MSFF(use_msff=use_msff, use_coord_attention=use_coord_attention)
        self.decoder = Decoder()
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        # The bank: one buffer per level, (N, C, S/stride, S/stride), shaped now so that .to(device)
        # and state_dict carry it; (0, ...) without memory. `memory_filled` says fill_memory ran.
        stored = memory_size if use_memory else 0
        for level, (channels, stride) in enumerate(zip(LEVEL_CHANNELS, LEVEL_STRIDES), start=1):
            self.register_buffer(f"memory_{level}", torch.zeros(stored, channels, image_size // stride, image_size // stride))
        self.register_buffer("memory_filled", torch.zeros((), dtype=torch.bool))
        self.train()

    anomaly_map = staticmethod(anomaly_map)  # model.anomaly_map(logits), the same function

    # -- modes ------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> MemSeg:
        """As nn.Module.train, but the feature encoder (stem, layer1-3) always stays in eval mode,
        so its BatchNorm statistics never drift away from the ones the memory bank was built with.
        The segment encoder follows `mode` throughout, as in the official network."""
        super().train(mode)
        if self.segment_encoder is not None:
            self.encoder.eval()  # all of it: the feature encoder has no layer4
        for name in _FROZEN:
            getattr(self.encoder, name).eval()
        return self

    # -- memory -----------------------------------------------------------------------------

    @property
    def memory(self) -> list[torch.Tensor]:
        return [self.memory_1, self.memory_2, self.memory_3]

    def frozen_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Stem (64 @ S/2, after bn1's ReLU) and the RAW layer1-3 features (64 @ S/4, 128 @ S/8,
        256 @ S/16) of images in [0, 1]."""
        enc = self.encoder
        x = (images - self.pixel_mean) / self.pixel_std
        stem = enc.act1(enc.bn1(enc.conv1(x)))
        level1 = enc.layer1(enc.maxpool(stem))
        level2 = enc.layer2(level1)
        level3 = enc.layer3(level2)
        return stem, [level1, level2, level3]

    @property
    def deep_encoder(self) -> Any:
        """The encoder whose layer4 is trained: the segment encoder, or the one encoder."""
        return self.encoder if self.segment_encoder is None else self.segment_encoder

    def segment_features(self, images: torch.Tensor) -> torch.Tensor:
        """The segment encoder's layer3 output (256 @ S/16) of images in [0, 1]: the input of its
        layer4. Its BatchNorms use batch statistics and move their running statistics in training."""
        enc = self.segment_encoder
        x = (images - self.pixel_mean) / self.pixel_std
        return enc.layer3(enc.layer2(enc.layer1(enc.maxpool(enc.act1(enc.bn1(enc.conv1(x)))))))

    @torch.no_grad()
    def fill_memory(self, images: torch.Tensor, batch_size: int = 16) -> None:
        """Store the smoothed layer1-3 features of memory_size normal images (float (N, 3, S, S)
        in [0, 1]) as the memory bank, replacing any previous one. With use_memory off nothing is
        stored. The images must be held out from training (the paper's protocol).

        The features are computed as `forward` computes them, under the caller's autocast (the
        job's precision, memseg.job.fill_memory), and stored in float32, which holds bf16 values
        exactly: the bank and the features compared with it are rounded alike, so a normal image
        that is in the bank gives DI exactly 0 (before, the bank was float32 and the input bf16)."""
        self._check_images(images)
        if images.shape[0] != self.memory_size:
            raise ValueError(f"fill_memory expects memory_size={self.memory_size} normal images, got {images.shape[0]}")
        if not self.use_memory:
            return
        device = self.memory_1.device
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device, torch.float32)
            _, levels = self.frozen_features(batch)
            for bank, feats in zip(self.memory, levels):
                bank[start : start + batch.shape[0]] = smooth(feats).to(bank.dtype)
        self.memory_filled.fill_(True)

    def nearest_memory(self, smoothed: list[torch.Tensor]) -> list[torch.Tensor]:
        """Index (B,) of the chosen memory item for each input and level, from smoothed features.

        Per level (official): argmin over n of sum |F_s,l - bank_l[n]|. joint_memory: one index
        for all levels, argmin of the sum over levels of the per-level mean |F_s - M|."""
        distances = []
        for feats, bank in zip(smoothed, self.memory):
            flat = at_least_float32(feats.flatten(1))
            # (B, N): summed |F - M| over the level's elements; cdist p=1 never builds B x N x D.
            distances.append(torch.cdist(flat[None], at_least_float32(bank.flatten(1))[None], p=1.0)[0])
        if self.joint_memory:
            joint = torch.stack([d / feats[0].numel() for d, feats in zip(distances, smoothed)]).sum(dim=0)
            return [joint.argmin(dim=1)] * len(distances)
        return [d.argmin(dim=1) for d in distances]

    def difference(self, smoothed: list[torch.Tensor]) -> list[torch.Tensor]:
        """Unscaled DI per level, |F_s,l - bank_l[n_l]| (float32, or float64 in a float64 model); zeros without memory."""
        if not self.use_memory:
            return [torch.zeros_like(feats, dtype=torch.float32) for feats in smoothed]
        if not bool(self.memory_filled):
            raise RuntimeError("the memory bank is empty: call fill_memory(normal_images) before forward")
        with torch.autocast(device_type=smoothed[0].device.type, enabled=False):
            indices = self.nearest_memory(smoothed)
            return [
                (at_least_float32(f) - at_least_float32(bank).index_select(0, i)).abs()
                for f, bank, i in zip(smoothed, self.memory, indices)
            ]

    # -- forward ----------------------------------------------------------------------------

    def _check_images(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"images must be (B, 3, S, S), got {tuple(images.shape)}")
        if images.shape[-1] != self.image_size:
            raise ValueError(f"this model was built for {self.image_size} px images, got {images.shape[-1]} px")
        if not images.is_floating_point():
            raise ValueError(f"images must be float in [0, 1], got {images.dtype} (divide uint8 images by 255)")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: float (B, 3, S, S) in [0, 1] -> logits (B, 2, S, S)."""
        self._check_images(images)
        with torch.no_grad():  # the frozen weights: no graph, less memory (train-mode BNs still move)
            stem, raw = self.frozen_features(images)
            deep_input = raw[2] if self.segment_encoder is None else self.segment_features(images)
        deepest = self.deep_encoder.layer4(deep_input)  # (B, 256, S/16) -> (B, 512, S/32), trainable
        diffs = [self.di_scale * diff for diff in self.difference([smooth(feats) for feats in raw])]
        concats = [torch.cat([self.feature_scale * feats, diff.to(feats.dtype)], dim=1) for feats, diff in zip(raw, diffs)]
        fused = self.msff(concats)
        if self.use_spatial_attention:
            fused = [feats * attn.to(feats.dtype) for feats, attn in zip(fused, spatial_attention(diffs))]
        return self.decoder(deepest, fused, stem)
