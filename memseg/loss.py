"""MemSeg's training loss: l1_weight * L1(P_anomaly, mask) + focal_weight * focal(gamma).

Focal loss as in the reference implementation: on the 2-class softmax, per pixel
-(1 - p_t)^gamma * log(p_t) with p_t the probability of the true class, no alpha, mean over
pixels. (The reference adds 1e-5 to p before the log and smooths the one-hot target by 1e-5;
here log p comes from log_softmax instead, which is exact and stable.) A soft mask m in [0, 1]
weighs the two classes: -(m (1 - p_1)^gamma log p_1 + (1 - m) (1 - p_0)^gamma log p_0); for a
0/1 mask this is the formula above.
"""

from __future__ import annotations

import torch


def memseg_loss(
    logits: torch.Tensor,
    mask: torch.Tensor,
    l1_weight: float = 0.6,
    focal_weight: float = 0.4,
    gamma: float = 4.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """logits (B, 2, S, S), mask (B, 1, S, S) or (B, S, S) in [0, 1].
    Returns (total, {"l1": ..., "focal": ...}), all 0-d tensors (no host sync)."""
    if logits.ndim != 4 or logits.shape[1] != 2:
        raise ValueError(f"logits must be (B, 2, S, S), got {tuple(logits.shape)}")
    if mask.ndim == 4:
        mask = mask[:, 0]
    if mask.shape != logits[:, 0].shape:
        raise ValueError(f"mask must be (B, 1, S, S) or (B, S, S) matching logits {tuple(logits.shape)}, got {tuple(mask.shape)}")
    log_probs = torch.log_softmax(logits.float(), dim=1)  # (B, 2, S, S)
    probs = log_probs.exp()
    target = mask.to(log_probs.dtype)

    l1 = (probs[:, 1] - target).abs().mean()
    focal_normal = (1.0 - probs[:, 0]).pow(gamma) * log_probs[:, 0]
    focal_anomaly = (1.0 - probs[:, 1]).pow(gamma) * log_probs[:, 1]
    focal = -(target * focal_anomaly + (1.0 - target) * focal_normal).mean()

    total = l1_weight * l1 + focal_weight * focal
    return total, {"l1": l1.detach(), "focal": focal.detach()}
