"""The revision of what a result means: one number, bumped whenever the network, the loss, the
anomaly simulation, the training recipe's semantics or the metrics change, so that results made
by two different models are never counted as one (docs/results.md, "What a result means").

A leaf module: anything may import it, it imports nothing of the project.
"""

from __future__ import annotations

REVISION = 6

# What each revision changed, newest last. Rows written before revisions were recorded carry no
# revision; they are read as revision 1 (LEGACY_REVISION).
LEGACY_REVISION = 1
HISTORY: dict[int, str] = {
    1: "Every result written before revisions were recorded (up to main 695c6d8): the first network "
    "and the official network that replaced it alike; only their git_sha tells them apart.",
    2: "The official network (per-level memory matching, scaled DI and features, the official decoder), the smoke profile at lr 1e-2; the first revision recorded in every row and checkpoint.",
    3: "Training as the official code sets it up: two encoders, the segment encoder's conv1-layer3 "
    "BatchNorms in train mode on the deep path (ablation frozen_bn = revision 2's one always-eval encoder); the "
    "official focal loss (alpha 1.0/1.2 by target, one-hot clamp and pt offset 1e-5); the paper profile is the "
    "official recipe (SGD lr 0.04, momentum 0.9, weight decay 3e-5, one cosine over 2701 steps) and revision 2's "
    "defaults are profile tootouch. Smoke: two encoders and the official focal loss, AdamW at lr 7e-3 (1e-2 left carpet at 76.6 pixel AUROC).",
    4: "AdamW runs its fused kernel on every device (before: the per-parameter loop on the CPU; within 1e-4 of the lr per step, but a whole job can land elsewhere, e.g. smoke carpet seed 0 at 2 threads 97.6 -> 77.8 pixel AUROC; fused SGD is bit-identical); a job may hold out training images for a validation curve (val_every, in the id).",
    5: "The precision is a recipe field (fp32, tf32, bf16 or auto), and paper and tootouch compute in the official "
    "code's float32 (before: bf16 autocast on GPUs, which is precision auto, still the smoke and tiny profiles'); the "
    "memory bank is filled under the job's autocast, as the features it is compared with (before: a float32 bank "
    "against bf16 features on GPUs). On the CPU, smoke and tiny compute as in revision 4.",
    6: "Each data set is scored as its authors score it: its registry entry names a scoring protocol (the metrics its tables print and its AUPRO limits), recorded on every row (scoring, low_aupro_fpr_limit; older rows read as mvtec_ad), and the summary prints those metrics; every row gains image AUPR (average precision) and AUPRO@0.05 (pixel_aupro_low, MVTec AD 2's published limit). The numbers of revision 5's metrics are unchanged."
    " A job fixes an image and a pixel threshold on defect-free images it never trained on before it reads the test set (MVTec AD 2's validation/; elsewhere the last K training images with calibrate_images, in the id, off by default), mean + 3 std of their scores, and rows gain image precision, recall, F1 and FPR and SegF1 at them (threshold_rule says how).",
}
