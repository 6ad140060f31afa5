"""The MemSeg loss: the official focal loss against a hand computation and a per-pixel transcription
of the official formula; revision 2's exact form (focal_smooth 0, no class weights) against a
brute-force reference."""

from __future__ import annotations

import math

import pytest
import torch

from memseg.build import loss_settings
from memseg.config import JobConfig
from memseg.loss import memseg_loss
from memseg.profiles import PROFILES

EXACT = {"alpha_normal": 1.0, "alpha_anomaly": 1.0, "smooth": 0.0}  # revision 2's focal loss (profile tootouch)


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
    total, parts = memseg_loss(logits, mask, gamma=gamma, **EXACT)
    l1, focal = _brute_force(logits, mask, gamma)
    assert abs(float(parts["l1"]) - l1) < 1e-6
    assert abs(float(parts["focal"]) - focal) < 1e-6
    assert abs(float(total) - (0.6 * l1 + 0.4 * focal)) < 1e-6
    if gamma == 0.0:  # focal with gamma 0 is cross-entropy
        reference = torch.nn.functional.cross_entropy(logits.float(), mask[:, 0].long())
        assert abs(float(parts["focal"]) - float(reference)) < 1e-6


@pytest.mark.parametrize("form", ["official", "exact"])
def test_loss_is_stable_for_extreme_logits_and_has_gradients(form: str) -> None:
    settings = {} if form == "official" else EXACT
    logits = torch.tensor([[[[200.0, -200.0]], [[-200.0, 200.0]]]], requires_grad=True)  # (1, 2, 1, 2)
    mask = torch.tensor([[[[0.0, 1.0]]]])
    total, parts = memseg_loss(logits, mask, **settings)
    assert torch.isfinite(total) and float(total.detach()) < 1e-6  # confidently right
    wrong, _ = memseg_loss(logits, 1 - mask, **settings)
    # confidently wrong: large and finite. The official pt never drops below 2e-5 (the clamp and the
    # offset), so its focal term is at most alpha * -log(2e-5) = 10.8 alpha.
    floor = 0.6 + 0.4 * 1.1 * -math.log(2e-5) - 1e-3 if form == "official" else 10
    assert torch.isfinite(wrong) and float(wrong.detach()) > floor
    wrong.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    if form == "exact":
        assert logits.grad.abs().sum() > 0
    else:  # the official loss takes probabilities: a saturated softmax passes no gradient, a strong one does
        strong = torch.tensor([[[[8.0, -8.0]], [[-8.0, 8.0]]]], requires_grad=True)
        memseg_loss(strong, 1 - mask)[0].backward()
        assert strong.grad is not None and torch.isfinite(strong.grad).all() and strong.grad.abs().sum() > 0


def test_official_focal_loss_equals_a_hand_computation_on_2x2() -> None:
    """One 2x2 image, logits chosen so the softmax is round: p_anomaly = 0.8, 0.5, 0.2, 0.5 with
    targets 1, 1, 0, 0. By hand (loss_fun.py: onehot clamped to [1e-5, 1 - 1e-5], pt = sum onehot p
    + 1e-5, alpha (1.0, 1.2) by target, gamma 4, mean):
      pixel 1 (t=1, p1=0.8): pt = 0.99999*0.8 + 1e-5*0.2 + 1e-5 = 0.800004, loss = -1.2 (0.199996)^4 log 0.800004
      pixel 2 (t=1, p1=0.5): pt = 0.5 + 1e-5 = 0.50001, loss = -1.2 (0.49999)^4 log 0.50001
      pixel 3 (t=0, p0=0.8): pt = 0.800004, loss = -1.0 (0.199996)^4 log 0.800004
      pixel 4 (t=0, p0=0.5): pt = 0.50001, loss = -1.0 (0.49999)^4 log 0.50001"""
    p1 = torch.tensor([[0.8, 0.5], [0.2, 0.5]], dtype=torch.float64)
    logits = torch.stack([torch.zeros_like(p1), torch.log(p1 / (1 - p1))])[None]  # (1, 2, 2, 2): softmax -> p1
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]], dtype=torch.float64)
    sure, even = 0.99999 * 0.8 + 1e-5 * 0.2 + 1e-5, 0.5 + 1e-5
    assert sure == pytest.approx(0.800004, abs=1e-12)
    by_hand = (
        -1.2 * (1 - sure) ** 4 * math.log(sure)
        - 1.2 * (1 - even) ** 4 * math.log(even)
        - 1.0 * (1 - sure) ** 4 * math.log(sure)
        - 1.0 * (1 - even) ** 4 * math.log(even)
    ) / 4
    l1_by_hand = (0.2 + 0.5 + 0.2 + 0.5) / 4
    total, parts = memseg_loss(logits, mask)
    assert float(parts["focal"]) == pytest.approx(by_hand, rel=1e-6)
    assert float(parts["l1"]) == pytest.approx(l1_by_hand, rel=1e-6)
    assert float(total) == pytest.approx(0.6 * l1_by_hand + 0.4 * by_hand, rel=1e-6)


def official_focal(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """loss_fun.py FocalLoss().forward on probabilities (B, 2, H, W) and a 0/1 target, step by step
    as it is written there (written from reading it, not copied): flatten to (N, 2), one-hot by
    scatter, clamp, pt, alpha indexed by the target."""
    flat = probs.permute(0, 2, 3, 1).reshape(-1, 2)
    idx = target.reshape(-1, 1).long()
    alpha = torch.tensor([[1.0], [1.2]], dtype=probs.dtype)
    one_hot = torch.zeros(flat.shape[0], 2, dtype=probs.dtype).scatter_(1, idx, 1)
    one_hot = torch.clamp(one_hot, 1e-5, 1.0 - 1e-5)
    pt = (one_hot * flat).sum(1) + 1e-5
    weights = alpha[idx].squeeze()
    return (-1 * weights * torch.pow(1 - pt, 4) * pt.log()).mean()


def test_official_focal_loss_matches_the_official_formula_on_random_pixels() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = 4 * torch.randn(2, 2, 8, 8, generator=generator, dtype=torch.float64)
    mask = (torch.rand(2, 1, 8, 8, generator=generator, dtype=torch.float64) > 0.7).double()
    _, parts = memseg_loss(logits, mask)
    assert float(parts["focal"]) == pytest.approx(
        float(official_focal(torch.softmax(logits, 1), mask[:, 0])), rel=1e-6
    )  # ours in float32


def test_a_soft_mask_weighs_the_two_per_class_losses() -> None:
    """m * loss(t=1) + (1 - m) * loss(t=0): linear in m, alpha interpolated with it, the 0/1 case at the ends."""
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(1, 2, 4, 4, generator=generator, dtype=torch.float64)
    ones, zeros = torch.ones(1, 1, 4, 4, dtype=torch.float64), torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    anomalous, normal = memseg_loss(logits, ones)[1]["focal"], memseg_loss(logits, zeros)[1]["focal"]
    soft = memseg_loss(logits, 0.3 * ones)[1]["focal"]
    assert float(soft) == pytest.approx(0.3 * float(anomalous) + 0.7 * float(normal), rel=1e-6)


def test_the_recipe_fields_reach_the_loss() -> None:
    official = loss_settings(JobConfig(category="bottle"))
    assert (official.alpha_normal, official.alpha_anomaly, official.smooth, official.gamma) == (1.0, 1.2, 1e-5, 4.0)
    tootouch = loss_settings(JobConfig.from_dict({"category": "bottle", **PROFILES["tootouch"]}))
    assert (tootouch.alpha_normal, tootouch.alpha_anomaly, tootouch.smooth) == (1.0, 1.0, 0.0)
    logits, mask = torch.randn(2, 2, 4, 4), (torch.rand(2, 1, 4, 4) > 0.5).float()
    assert torch.equal(tootouch(logits, mask)[0], memseg_loss(logits, mask, **EXACT)[0])
    with pytest.raises(ValueError, match="focal_smooth"):
        JobConfig(category="bottle", focal_smooth=0.5)


def test_loss_accepts_masks_without_channel_and_refuses_mismatches() -> None:
    logits = torch.randn(2, 2, 4, 4)
    mask = (torch.rand(2, 4, 4) > 0.5).float()
    assert torch.equal(memseg_loss(logits, mask)[0], memseg_loss(logits, mask[:, None])[0])
    with pytest.raises(ValueError, match="mask"):
        memseg_loss(logits, torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="logits"):
        memseg_loss(torch.zeros(2, 1, 4, 4), mask)
