"""The MemSeg loss against a brute-force per-pixel reference."""

from __future__ import annotations

import math

import pytest
import torch

from memseg.loss import memseg_loss


def _brute_force(logits: torch.Tensor, mask: torch.Tensor, gamma: float) -> tuple[float, float]:
    l1, focal, n = 0.0, 0.0, 0
    logits, mask = logits.double(), mask.double()
    for b in range(logits.shape[0]):
        for y in range(logits.shape[2]):
            for x in range(logits.shape[3]):
                z0, z1 = float(logits[b, 0, y, x]), float(logits[b, 1, y, x])
                p1 = math.exp(z1) / (math.exp(z0) + math.exp(z1))
                m = float(mask[b, 0, y, x])
                p_t = p1 if m == 1.0 else 1.0 - p1
                l1 += abs(p1 - m)
                focal += -((1.0 - p_t) ** gamma) * math.log(p_t)
                n += 1
    return l1 / n, focal / n


@pytest.mark.parametrize("gamma", [0.0, 2.0, 4.0])
def test_loss_matches_brute_force(gamma: float) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(2, 2, 8, 8, generator=generator, dtype=torch.float64)
    mask = (torch.rand(2, 1, 8, 8, generator=generator) > 0.6).double()
    total, parts = memseg_loss(logits, mask, gamma=gamma)
    l1, focal = _brute_force(logits, mask, gamma)
    assert abs(float(parts["l1"]) - l1) < 1e-6
    assert abs(float(parts["focal"]) - focal) < 1e-6
    assert abs(float(total) - (0.6 * l1 + 0.4 * focal)) < 1e-6
    if gamma == 0.0:  # focal with gamma 0 is cross-entropy
        reference = torch.nn.functional.cross_entropy(logits.float(), mask[:, 0].long())
        assert abs(float(parts["focal"]) - float(reference)) < 1e-6


def test_loss_is_stable_for_extreme_logits_and_has_gradients() -> None:
    logits = torch.tensor([[[[200.0, -200.0]], [[-200.0, 200.0]]]], requires_grad=True)  # (1, 2, 1, 2)
    mask = torch.tensor([[[[0.0, 1.0]]]])
    total, parts = memseg_loss(logits, mask)
    assert torch.isfinite(total) and float(total.detach()) < 1e-6  # confidently right
    wrong, _ = memseg_loss(logits, 1 - mask)
    assert torch.isfinite(wrong) and float(wrong.detach()) > 10  # confidently wrong: large, finite
    wrong.backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_loss_accepts_masks_without_channel_and_refuses_mismatches() -> None:
    logits = torch.randn(2, 2, 4, 4)
    mask = (torch.rand(2, 4, 4) > 0.5).float()
    assert torch.equal(memseg_loss(logits, mask)[0], memseg_loss(logits, mask[:, None])[0])
    with pytest.raises(ValueError, match="mask"):
        memseg_loss(logits, torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="logits"):
        memseg_loss(torch.zeros(2, 1, 4, 4), mask)
