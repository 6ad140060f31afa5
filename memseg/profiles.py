"""The profiles: named sets of JobConfig overrides, from the official recipe (`paper`, the JobConfig
defaults) to the CPU's smoke proxy and the harness's plumbing profile. docs/model.md gives each
number's source.
"""

from __future__ import annotations

from typing import Any

from memseg.names import check_names

# TooTouch/MemSeg's recipe (an independent re-implementation; revision 2's defaults): AdamW 3e-3,
# weight decay 5e-4, cosine with 10% linear warm-up, 5000 steps, and the focal loss without class
# weights, exact log_softmax. With ablation frozen_bn it computes exactly what revision 2 computed on the
# CPU; on a GPU revision 2 ran bf16 autocast, which is precision auto (this recipe is fp32, as the official).
TOOTOUCH_RECIPE: dict[str, Any] = {
    "steps": 5000,
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": 5e-4,
    "schedule": "warmup_cosine",
    "warmup_fraction": 0.1,
    "focal_alpha_normal": 1.0,
    "focal_alpha_anomaly": 1.0,
    "focal_smooth": 0.0,
}

PROFILES: dict[str, dict[str, Any]] = {
    # The official recipe (the JobConfig defaults, float32 included); needs a GPU (about 5 s per step at 256 px on 2 CPU cores).
    "paper": {},
    "tootouch": dict(TOOTOUCH_RECIPE),
    # CPU-friendly plumbing and learning check: 64 px, 150 steps, random backbone (no download).
    # The proxy of the official recipe (two encoders, official focal loss) apart from the optimizer,
    # which is ours: AdamW with 10% warm-up and a cosine, weight decay 5e-4, because that is what was
    # measured to learn in 150 steps; the official SGD schedule was never measured at this length.
    # lr 7e-3: 3e-3 under-trains the official decoder in 150 steps (official network: grid 71 image AUROC,
    # 99.5 at 450 steps; 97 at 1e-2), but at 1e-2 the official focal loss with two encoders left
    # carpet at 76.6 pixel AUROC (revision 3; either change alone passed). Of 5e-3 and 7e-3, which both
    # pass the learning test, the higher (docs/faithfulness.md, "The CPU smoke proxy").
    "smoke": {
        "image_size": 64,
        "steps": 150,
        "batch_size": 8,
        "optimizer": "adamw",
        "lr": 7e-3,
        "weight_decay": 5e-4,
        "schedule": "warmup_cosine",
        "warmup_fraction": 0.1,
        "memory_size": 10,
        "backbone_weights": "none",
        "eval_batch_size": 16,
        "precision": "auto",  # float32 on the CPU, bf16 on a GPU: what it always computed (its ids stay)
    },
    # The harness's own tests: seconds per job. Revision 2's recipe (tootouch) at 4 steps, so the
    # results stored by earlier code (tests/harness/fixtures) keep their job ids: a plumbing profile.
    "tiny": {
        **{k: v for k, v in TOOTOUCH_RECIPE.items() if k != "steps"},
        "image_size": 64,
        "steps": 4,
        "batch_size": 4,
        "memory_size": 4,
        "backbone_weights": "none",
        "log_every": 1,
        "precision": "auto",  # as smoke: what it always computed, so its stored ids stay
    },
}


def profile(name: str) -> dict[str, Any]:
    """The JobConfig overrides of profile `name`, or an UnknownNameError that lists the valid names."""
    return dict(PROFILES[check_names("profiles", [name], PROFILES)[0]])
