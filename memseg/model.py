"""The MemSeg network (arXiv 2205.00908): frozen ResNet18 encoder, memory bank of normal
features, multi-scale feature fusion with coordinate and spatial attention, U-Net decoder.

`MemSeg.forward` takes float images in [0, 1] and normalises them itself, so no caller can forget
the ImageNet statistics; it returns 2-channel logits at the input size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from memseg.backbone import create_encoder
from memseg.config import ABLATIONS, Ablation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LEVEL_CHANNELS = (64, 128, 256)  # layer1 @ S/4, layer2 @ S/8, layer3 @ S/16
_FROZEN = ("conv1", "bn1", "act1", "maxpool", "layer1", "layer2", "layer3")  # timm ResNet names


def anomaly_map(logits: torch.Tensor) -> torch.Tensor:
    """Per-pixel anomaly probability, (B, S, S): softmax over the 2 logit channels, channel 1."""
    return torch.softmax(logits.float(), dim=1)[:, 1]


def _smooth(feats: torch.Tensor) -> torch.Tensor:
    """3x3 average pool, stride 1: the local smoothing applied to bank and input features alike."""
    return F.avg_pool2d(feats, kernel_size=3, stride=1, padding=1)


def _up(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class CoordinateAttention(nn.Module):
    """Coordinate attention (Hou et al., CVPR 2021): pool along H and along W, a shared 1x1
    conv + BN + h-swish, then one 1x1 conv + sigmoid per direction. Returns the two attention
    maps, (B, C, H, 1) and (B, C, 1, W), to multiply into a feature map."""

    def __init__(self, channels: int, reduction: int = 32, min_hidden: int = 8) -> None:
        super().__init__()
        hidden = max(min_hidden, channels // reduction)
        self.squeeze = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.BatchNorm2d(hidden), nn.Hardswish())
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
    """One level of MSFF: [F, DI] (2C) -> 3x3 conv, reweighted by coordinate attention computed
    from [F, DI] itself -> two 3x3 convs down to C channels."""

    def __init__(self, channels: int, use_coord_attention: bool) -> None:
        super().__init__()
        self.conv_in = ConvBNReLU(2 * channels, 2 * channels)
        self.attention = CoordinateAttention(2 * channels) if use_coord_attention else None
        self.conv_out = nn.Sequential(ConvBNReLU(2 * channels, channels), ConvBNReLU(channels, channels))

    def forward(self, concat: torch.Tensor) -> torch.Tensor:
        feats = self.conv_in(concat)
        if self.attention is not None:
            attn_h, attn_w = self.attention(concat)
            feats = feats * attn_h * attn_w
        return self.conv_out(feats)


class MSFF(nn.Module):
    """Multi-scale feature fusion over the three levels, with top-down fusion (the deeper level
    upsampled x2, conv to the shallower width, added).

    use_msff=False (ablation no_msff): each level is only a 1x1 conv + BN + ReLU projection of
    [F, DI] to C channels; no coordinate attention, no top-down fusion.
    """

    def __init__(self, use_msff: bool = True, use_coord_attention: bool = True) -> None:
        super().__init__()
        self.use_msff = use_msff
        if use_msff:
            self.blocks = nn.ModuleList(MSFFBlock(c, use_coord_attention) for c in LEVEL_CHANNELS)
            self.fuse_32 = ConvBNReLU(LEVEL_CHANNELS[2], LEVEL_CHANNELS[1])
            self.fuse_21 = ConvBNReLU(LEVEL_CHANNELS[1], LEVEL_CHANNELS[0])
        else:
            self.blocks = nn.ModuleList(ConvBNReLU(2 * c, c, kernel_size=1) for c in LEVEL_CHANNELS)

    def forward(self, concats: list[torch.Tensor]) -> list[torch.Tensor]:
        level1, level2, level3 = (block(x) for block, x in zip(self.blocks, concats))
        if self.use_msff:
            level2 = level2 + self.fuse_32(_up(level3))  # (B, 256, S/16) -> (B, 128, S/8)
            level1 = level1 + self.fuse_21(_up(level2))  # (B, 128, S/8) -> (B, 64, S/4)
        return [level1, level2, level3]


class UpConv(nn.Sequential):
    """x2 bilinear upsample, then 3x3 conv + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), ConvBNReLU(in_channels, out_channels))


class Decoder(nn.Module):
    """U-Net decoder from layer4 (512 @ S/32) to 2-channel logits at S. Channel widths follow the
    reference implementation: 512 -> 256 (+256) -> 128 (+128) -> 64 (+64) -> 48 (+48 from the
    stem) -> 48 -> 2. (The reference projects the stem with a bare conv; here it is conv + BN +
    ReLU like every other block.)"""

    def __init__(self) -> None:
        super().__init__()
        self.up_16 = UpConv(512, 256)
        self.up_8 = UpConv(256 + 256, 128)
        self.up_4 = UpConv(128 + 128, 64)
        self.up_2 = UpConv(64 + 64, 48)
        self.stem_proj = ConvBNReLU(64, 48)
        self.up_1 = UpConv(48 + 48, 48)
        self.head = nn.Conv2d(48, 2, kernel_size=3, padding=1)

    def forward(self, deepest: torch.Tensor, fused: list[torch.Tensor], stem: torch.Tensor) -> torch.Tensor:
        level1, level2, level3 = fused
        x = torch.cat([self.up_16(deepest), level3], dim=1)  # (B, 512, S/16)
        x = torch.cat([self.up_8(x), level2], dim=1)  # (B, 256, S/8)
        x = torch.cat([self.up_4(x), level1], dim=1)  # (B, 128, S/4)
        x = torch.cat([self.up_2(x), self.stem_proj(stem)], dim=1)  # (B, 96, S/2)
        return self.head(self.up_1(x))  # (B, 48, S) -> (B, 2, S)


class MemSeg(nn.Module):
    """MemSeg. Call `fill_memory(normal_images)` once before training (unless use_memory is
    off), then `forward(images) -> logits (B, 2, S, S)` with images float (B, 3, S, S) in [0, 1],
    S a multiple of 32.

    Memory matching (one memory item per input): the distance from an input to a memory item is
    sum over the three levels of the mean absolute difference of their smoothed features (each
    level weighs the same, whatever its size: the reference implementation sums per-level means
    too, of squared differences). The closest item gives DI_l = |F_l - M_l| at every level, and
    the MSFF input is [F_l, DI_l] with F_l the smoothed input features.

    Spatial attention: M3 = mean_c(DI3), M2 = mean_c(DI2) * up(M3), M1 = mean_c(DI1) * up(M2) *
    up(M3), as DESIGN.md section 4 writes it (the reference implementation leaves out up(M3) in M1).
    """

    # Buffers and the encoder's stages are nn.Module attributes; typed here for the checker.
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor
    memory_1: torch.Tensor
    memory_2: torch.Tensor
    memory_3: torch.Tensor
    encoder: Any  # timm's features_only ResNet18: its stages (conv1, layer1, ...) are attributes

    def __init__(self, backbone_weights: str = "none", ablation: Ablation = ABLATIONS["full"], memory_size: int = 30) -> None:
        super().__init__()
        if ablation.use_spatial_attention and not ablation.use_memory:
            raise ValueError(
                f"ablation {ablation.name!r}: spatial attention is computed from the memory difference; it needs use_memory"
            )
        if memory_size < 1:
            raise ValueError(f"memory_size must be >= 1, got {memory_size}")
        self.ablation = ablation
        self.memory_size = memory_size
        self.encoder = create_encoder(backbone_weights)
        for name in _FROZEN:
            getattr(self.encoder, name).requires_grad_(False)
        self.msff = MSFF(use_msff=ablation.use_msff, use_coord_attention=ablation.use_coord_attention)
        self.decoder = Decoder()
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        # The bank: one buffer per level, (N, C, h, w); empty until fill_memory. Registered up front
        # so .to(device) and state_dict carry it; loading resizes it (see _load_from_state_dict).
        for level, channels in enumerate(LEVEL_CHANNELS, start=1):
            self.register_buffer(f"memory_{level}", torch.zeros(0, channels, 0, 0))
        self.train()

    anomaly_map = staticmethod(anomaly_map)  # model.anomaly_map(logits), the same function

    # -- modes ------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> MemSeg:
        """As nn.Module.train, but the frozen encoder (stem, layer1-3) always stays in eval mode,
        so its BatchNorm statistics never drift away from the ones the memory bank was built with."""
        super().train(mode)
        for name in _FROZEN:
            getattr(self.encoder, name).eval()
        return self

    # -- memory -----------------------------------------------------------------------------

    @property
    def memory(self) -> list[torch.Tensor]:
        return [self.memory_1, self.memory_2, self.memory_3]

    def _frozen_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Stem (64 @ S/2) and layer1-3 (64 @ S/4, 128 @ S/8, 256 @ S/16) of normalised images."""
        enc = self.encoder
        x = (images - self.pixel_mean) / self.pixel_std
        stem = enc.act1(enc.bn1(enc.conv1(x)))
        level1 = enc.layer1(enc.maxpool(stem))
        level2 = enc.layer2(level1)
        level3 = enc.layer3(level2)
        return stem, [level1, level2, level3]

    @torch.no_grad()
    def fill_memory(self, images: torch.Tensor, batch_size: int = 16) -> None:
        """Store the smoothed layer1-3 features of memory_size normal images (float (N, 3, S, S)
        in [0, 1]) as the memory bank, replacing any previous one. With use_memory off nothing is
        stored. The images must be held out from training (the paper's protocol)."""
        self._check_images(images)
        if images.shape[0] != self.memory_size:
            raise ValueError(f"fill_memory expects memory_size={self.memory_size} normal images, got {images.shape[0]}")
        if not self.ablation.use_memory:
            return
        device = self.memory_1.device
        chunks: list[list[torch.Tensor]] = [[], [], []]
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device, torch.float32)
            with torch.autocast(device_type=device.type, enabled=False):
                _, levels = self._frozen_features(batch)
            for level, feats in enumerate(levels):
                chunks[level].append(_smooth(feats))
        for level, parts in enumerate(chunks, start=1):
            setattr(self, f"memory_{level}", torch.cat(parts).contiguous())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        # The bank's shape depends on N and the image size: take it from the checkpoint.
        for level in range(1, len(LEVEL_CHANNELS) + 1):
            key = f"{prefix}memory_{level}"
            if key in state_dict:
                current = getattr(self, f"memory_{level}")
                setattr(self, f"memory_{level}", torch.empty_like(state_dict[key], device=current.device, dtype=current.dtype))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def nearest_memory(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """Index (B,) of the closest memory item for each input, from smoothed level features."""
        distance = None
        for feats, bank in zip(levels, self.memory):
            flat = feats.flatten(1).float()
            # (B, N): mean |F - M| over the level's elements; cdist p=1 never builds B x N x D.
            level_distance = torch.cdist(flat[None], bank.flatten(1).float()[None], p=1.0)[0] / flat.shape[1]
            distance = level_distance if distance is None else distance + level_distance
        assert distance is not None, "the memory bank has no levels"
        return distance.argmin(dim=1)

    def difference(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        """DI per level: |F - M| against each input's nearest memory item; zeros without memory."""
        if not self.ablation.use_memory:
            return [torch.zeros_like(feats) for feats in levels]
        if self.memory_1.shape[0] == 0:
            raise RuntimeError("the memory bank is empty: call fill_memory(normal_images) before forward")
        if self.memory_1.shape[-2:] != levels[0].shape[-2:]:
            raise ValueError(
                f"images are {4 * levels[0].shape[-1]} px but the memory bank was filled at {4 * self.memory_1.shape[-1]} px"
            )
        with torch.autocast(device_type=levels[0].device.type, enabled=False):
            index = self.nearest_memory(levels)
            return [(feats.float() - bank.index_select(0, index)).abs() for feats, bank in zip(levels, self.memory)]

    # -- forward ----------------------------------------------------------------------------

    def _check_images(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != images.shape[-2] or images.shape[-1] % 32:
            raise ValueError(f"images must be (B, 3, S, S) with S a multiple of 32, got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be float in [0, 1], got {images.dtype} (divide uint8 images by 255)")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: float (B, 3, S, S) in [0, 1] -> logits (B, 2, S, S)."""
        self._check_images(images)
        with torch.no_grad():  # the frozen part: no graph, less memory
            stem, levels = self._frozen_features(images)
        deepest = self.encoder.layer4(levels[2])  # (B, 512, S/32), trainable
        levels = [_smooth(feats) for feats in levels]
        diffs = self.difference(levels)
        concats = [torch.cat([feats, diff.to(feats.dtype)], dim=1) for feats, diff in zip(levels, diffs)]
        fused = self.msff(concats)
        if self.ablation.use_spatial_attention:
            m3 = diffs[2].mean(dim=1, keepdim=True)  # (B, 1, S/16)
            m2 = diffs[1].mean(dim=1, keepdim=True) * _up(m3)  # (B, 1, S/8)
            m1 = diffs[0].mean(dim=1, keepdim=True) * _up(m2) * _up(m3, 4)  # (B, 1, S/4)
            fused = [feats * m.to(feats.dtype) for feats, m in zip(fused, (m1, m2, m3))]
        return self.decoder(deepest, fused, stem)
