"""MemSeg's training loss: l1_weight * L1(P_anomaly, mask) + focal_weight * focal.

The focal loss is the official one (areylng/MemSeg loss_fun.py, `FocalLoss()` with its defaults,
on the softmax of the 2-channel logits): per pixel with target class t,

    onehot = clamp(one_hot(t), smooth, 1 - smooth)
    pt     = sum_c onehot_c * p_c + smooth
    loss   = -alpha_t * (1 - pt)^gamma * log(pt)

with alpha = (1.0, 1.2) (normal, anomalous), gamma 4, smooth 1e-5, mean over pixels. For t = 1
that is pt = (1 - smooth) p_1 + smooth p_0 + smooth, for t = 0 the same with the classes swapped.

smooth = 0 is the exact form of revision 2 (profile tootouch): log pt from log_softmax, exact and
stable for any logits; with alpha (1, 1) it computes what that loss did, bit for bit.

A soft mask m in [0, 1] weighs the two per-class losses: m * loss(t=1) + (1 - m) * loss(t=0), so
alpha is interpolated with m too. For a 0/1 mask this is the formula above; it is linear in m (the
expected loss of a target drawn with probability m), and it is what revision 2 did with soft masks.
The simulator only makes 0/1 masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# The official FocalLoss() defaults (loss_fun.py): alpha None -> ones with alpha[1] * 1.2, smooth 1e-5.
OFFICIAL_ALPHA_NORMAL = 1.0
OFFICIAL_ALPHA_ANOMALY = 1.2
OFFICIAL_SMOOTH = 1e-5


def memseg_loss(
    logits: torch.Tensor,
    mask: torch.Tensor,
    l1_weight: float = 0.6,
    focal_weight: float = 0.4,
    gamma: float = 4.0,
    alpha_normal: float = OFFICIAL_ALPHA_NORMAL,
    alpha_anomaly: float = OFFICIAL_ALPHA_ANOMALY,
    smooth: float = OFFICIAL_SMOOTH,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """logits (B, 2, S, S), mask (B, 1, S, S) or (B, S, S) in [0, 1].
    Returns (total, {"l1": ..., "focal": ...}), all 0-d tensors (no host sync)."""
    if logits.ndim != 4 or logits.shape[1] != 2:
        raise ValueError(f"logits must be (B, 2, S, S), got {tuple(logits.shape)}")
    if mask.ndim == 4:
        mask = mask[:, 0]
    if mask.shape != logits[:, 0].shape:
        raise ValueError(f"mask must be (B, 1, S, S) or (B, S, S) matching logits {tuple(logits.shape)}, got {tuple(mask.shape)}")
    if not 0.0 <= smooth < 0.5:
        raise ValueError(f"smooth must be in [0, 0.5), got {smooth}")
    # float32 (from bf16 autocast logits), or float64 when the whole model runs in float64 (tests)
    log_probs = torch.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=1)  # (B, 2, S, S)
    probs = log_probs.exp()
    target = mask.to(log_probs.dtype)

    l1 = (probs[:, 1] - target).abs().mean()
    if smooth == 0.0:
        pt_normal, pt_anomaly = probs[:, 0], probs[:, 1]
        log_pt_normal, log_pt_anomaly = log_probs[:, 0], log_probs[:, 1]
    else:  # the official pt for each target class: the clamped one-hot times p, plus smooth
        pt_normal = (1.0 - smooth) * probs[:, 0] + smooth * probs[:, 1] + smooth
        pt_anomaly = (1.0 - smooth) * probs[:, 1] + smooth * probs[:, 0] + smooth
        log_pt_normal, log_pt_anomaly = pt_normal.log(), pt_anomaly.log()
    focal_normal = alpha_normal * (1.0 - pt_normal).pow(gamma) * log_pt_normal
    focal_anomaly = alpha_anomaly * (1.0 - pt_anomaly).pow(gamma) * log_pt_anomaly
    focal = -(target * focal_anomaly + (1.0 - target) * focal_normal).mean()

    total = l1_weight * l1 + focal_weight * focal
    return total, {"l1": l1.detach(), "focal": focal.detach()}


@dataclass(frozen=True)
class LossSettings:
    """The loss a job trains with (memseg.build.loss_settings maps its recipe's l1_weight and focal_*
    fields here; the loss knows no JobConfig); call it on (logits, mask) for memseg_loss with these
    settings."""

    l1_weight: float = 0.6
    focal_weight: float = 0.4
    gamma: float = 4.0
    alpha_normal: float = OFFICIAL_ALPHA_NORMAL
    alpha_anomaly: float = OFFICIAL_ALPHA_ANOMALY
    smooth: float = OFFICIAL_SMOOTH

    def __call__(self, logits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return memseg_loss(
            logits, mask, self.l1_weight, self.focal_weight, self.gamma, self.alpha_normal, self.alpha_anomaly, self.smooth
        )
