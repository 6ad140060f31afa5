"""The evaluation protocol: native-resolution pixel metrics against a brute-force reference on one
category whose masks have two different sizes, and the protocol each job records."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from sklearn.metrics import precision_recall_curve, roc_auc_score

from memseg import job as job_module
from memseg.config import JobConfig
from memseg.data.loading import load_category
from memseg.data.synthetic import generate
from memseg.metrics import compute_metrics_native, evaluate_native, image_scores
from memseg.profiles import TOOTOUCH_RECIPE, profile
from memseg.protocol import LEGACY_PROTOCOL, EvalProtocol, protocol_for
from memseg.result import METRICS, THRESHOLDED, THRESHOLDS

TOL = 1e-10
MODEL_SIZE = 64
OTHER_SIZE = (80, 96)  # (height, width) of the resized test images: not square, not the model size


# ---------------------------------------------------------------------------------------------
# Brute-force references, written from the definitions (no torch)
# ---------------------------------------------------------------------------------------------


def bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (align_corners=False), pixel by pixel: output pixel
    (y, x) samples the input at ((y + 0.5) * h / H - 0.5, ...), clamped at the border."""
    h, w = image.shape
    out = np.empty((height, width), dtype=np.float64)
    for y in range(height):
        sy = max((y + 0.5) * h / height - 0.5, 0.0)
        y0 = min(math.floor(sy), h - 1)
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for x in range(width):
            sx = max((x + 0.5) * w / width - 0.5, 0.0)
            x0 = min(math.floor(sx), w - 1)
            x1, fx = min(x0 + 1, w - 1), sx - x0
            top = (1 - fx) * image[y0, x0] + fx * image[y0, x1]
            bottom = (1 - fx) * image[y1, x0] + fx * image[y1, x1]
            out[y, x] = (1 - fy) * top + fy * bottom
    return out


def reference_native_metrics(maps: np.ndarray, masks: list[np.ndarray], limit: float = 0.3) -> dict[str, float]:
    """Pixel AUROC and F1-max by scikit-learn and AUPRO by thresholding at every distinct score,
    on each map upsampled to its own mask's size, all pixels pooled."""
    upsampled = [bilinear(m.astype(np.float64), *mask.shape).astype(np.float32) for m, mask in zip(maps, masks)]
    scores = np.concatenate([u.ravel() for u in upsampled])
    labels = np.concatenate([mask.ravel() for mask in masks])
    precision, recall, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    regions = []
    for i, mask in enumerate(masks):
        labelled, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
        regions += [(i, labelled == k) for k in range(1, count + 1)]
    num_normal = sum(int((~mask).sum()) for mask in masks)
    fprs, pros = [0.0], [0.0]
    for threshold in np.unique(scores)[::-1]:
        predicted = [u >= threshold for u in upsampled]
        fprs.append(sum(int((p & ~mask).sum()) for p, mask in zip(predicted, masks)) / num_normal)
        pros.append(float(np.mean([predicted[i][region].mean() for i, region in regions])))
    fprs, pros = fprs + [1.0], pros + [1.0]
    area = 0.0
    for x0, y0, x1, y1 in zip(fprs[:-1], pros[:-1], fprs[1:], pros[1:]):
        if x1 <= limit:
            area += 0.5 * (y0 + y1) * (x1 - x0)
        elif x0 < limit:
            area += 0.5 * (y0 + y0 + (y1 - y0) * (limit - x0) / (x1 - x0)) * (limit - x0)
    return {"pixel_auroc": roc_auc_score(labels, scores), "pixel_f1": float(f1[:-1].max()), "pixel_aupro": area / limit}


# ---------------------------------------------------------------------------------------------
# Data: one generated category whose test images (and masks) come in two sizes
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated bottle category at 64 px in which every other test image and its mask are
    resized to 96x80 (masks nearest), so one category holds masks of two sizes."""
    root = generate(
        tmp_path_factory.mktemp("mixed") / "data",
        categories=("bottle",),
        image_size=MODEL_SIZE,
        n_train=12,
        n_test_good=3,
        n_test_defect_per_type=2,
        seed=0,
    )
    tests = sorted((root / "bottle" / "test").glob("*/*.png"))
    for path in tests[::2]:
        defect = path.parent.name
        Image.open(path).resize(OTHER_SIZE[::-1], Image.Resampling.BILINEAR).save(path)
        if defect != "good":
            mask = root / "bottle" / "ground_truth" / defect / f"{path.stem}_mask.png"
            Image.open(mask).resize(OTHER_SIZE[::-1], Image.Resampling.NEAREST).save(mask)
    return root


def mask_files(root: Path) -> list[np.ndarray]:
    """Each test image's mask straight from the files (zeros of the image's size for normal ones),
    in the loader's order (sorted defect type, then file)."""
    data = load_category("synthetic", root, "bottle", MODEL_SIZE)
    masks = []
    for path, defect in zip(data.test_paths, data.test_defect_types):
        width, height = Image.open(path).size
        if defect == "good":
            masks.append(np.zeros((height, width), dtype=bool))
        else:
            mask_path = Path(path).parent.parent.parent / "ground_truth" / defect / f"{Path(path).stem}_mask.png"
            values = np.asarray(Image.open(mask_path).convert("L"), dtype=np.float64)
            masks.append(values > 0.5 * values.max())
    return masks


def test_the_loader_keeps_every_mask_at_its_original_size(mixed_root: Path) -> None:
    expected = mask_files(mixed_root)
    assert {m.shape for m in expected} == {(MODEL_SIZE, MODEL_SIZE), OTHER_SIZE}, "the data must mix two mask sizes"
    data = load_category("synthetic", mixed_root, "bottle", MODEL_SIZE, native_masks=True)
    assert data.test_masks is not None and data.test_masks.shape[1:] == (MODEL_SIZE, MODEL_SIZE)
    assert data.test_masks_native is not None and len(data.test_masks_native) == len(expected)
    for native, reference in zip(data.test_masks_native, expected):
        assert native.dtype == torch.bool and np.array_equal(native.numpy(), reference)
    assert load_category("synthetic", mixed_root, "bottle", MODEL_SIZE).test_masks_native is None


def test_native_metrics_equal_a_brute_force_reference_on_two_mask_sizes(mixed_root: Path) -> None:
    data = load_category("synthetic", mixed_root, "bottle", MODEL_SIZE, native_masks=True)
    rng = np.random.default_rng(3)
    # Smooth random maps, higher where the model-size mask is set, quantised so that scores tie.
    noise = ndimage.gaussian_filter(rng.random((len(data.test_paths), MODEL_SIZE, MODEL_SIZE)), sigma=(0, 2, 2))
    assert data.test_masks is not None
    maps = np.round((noise + 0.3 * data.test_masks.numpy()) * 200) / 200
    maps_t = torch.from_numpy(maps.astype(np.float32))
    scores = image_scores(maps_t)
    protocol = protocol_for(JobConfig("bottle", eval_resolution="native"))
    got = job_module.evaluate_under(protocol, scores, data, maps_t).metrics
    expected = reference_native_metrics(np.asarray(maps, dtype=np.float32), mask_files(mixed_root))
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=TOL), name
    assert got["image_auroc"] == pytest.approx(roc_auc_score(data.test_labels.numpy(), scores.numpy()), abs=TOL)
    # The model-resolution protocol gives other pixel numbers on the same maps: the two are not comparable.
    model = job_module.evaluate_under(protocol_for(JobConfig("bottle")), scores, data, maps_t).metrics
    assert model["image_auroc"] == got["image_auroc"] and model["pixel_auroc"] != got["pixel_auroc"]


def test_native_metrics_check_their_inputs() -> None:
    maps = torch.rand(2, 8, 8)
    scores, labels = torch.tensor([0.1, 0.9]), torch.tensor([0, 1])
    masks = [torch.zeros(10, 12, dtype=torch.bool), torch.zeros(16, 16, dtype=torch.bool)]
    masks[1][3:6, 4:9] = True
    assert math.isfinite(compute_metrics_native(scores, labels, maps, masks)["pixel_aupro"])
    with pytest.raises(ValueError, match="1 masks but 2 anomaly maps"):
        compute_metrics_native(scores, labels, maps, masks[:1])
    with pytest.raises(ValueError, match="must have shape \\(H, W\\)"):
        compute_metrics_native(scores, labels, maps, [masks[0][None], masks[1]])
    with pytest.raises(ValueError, match="undefined: all .* pixels are labelled normal"):
        compute_metrics_native(scores, labels, maps, [masks[0], torch.zeros(4, 4, dtype=torch.bool)])
    assert math.isnan(compute_metrics_native(scores, labels, maps, None)["pixel_auroc"])


def test_native_curves_are_those_of_the_native_metrics() -> None:
    """The report plots the curves the metrics were read from: at native resolution, the pixel ROC
    and PRO of the upsampled maps, not of the model-size ones."""
    rng = np.random.default_rng(0)
    maps = torch.from_numpy(rng.random((2, 8, 8)).astype(np.float32))
    scores, labels = torch.tensor([0.1, 0.9]), torch.tensor([0, 1])
    masks = [torch.zeros(10, 12, dtype=torch.bool), torch.zeros(16, 16, dtype=torch.bool)]
    masks[1][3:9, 4:12] = True
    evaluation = evaluate_native(scores, labels, maps, masks)
    assert evaluation.metrics == compute_metrics_native(scores, labels, maps, masks)
    assert evaluation.pixel_roc is not None and evaluation.pro is not None
    area = float(np.trapezoid(evaluation.pixel_roc.y, evaluation.pixel_roc.x))
    assert area == pytest.approx(evaluation.metrics["pixel_auroc"], abs=1e-9)
    pixels = sum(m.numel() for m in masks)
    assert len(evaluation.pixel_roc.x) > 8 * 8 * 2 and len(evaluation.pixel_roc.x) <= pixels + 1


@pytest.mark.slow
def test_a_native_job_runs_end_to_end_and_records_its_protocol(mixed_root: Path) -> None:
    values = profile("tiny") | {"category": "bottle", "data_root": str(mixed_root), "dataset": "synthetic"}
    native = job_module.run(JobConfig.from_dict(values | {"eval_resolution": "native"}))
    assert native.protocol == EvalProtocol(eval_resolution="native", mask_resize="none", map_resize="bilinear")
    # Every metric it measures is a number; those at calibrated thresholds are NaN without calibration images.
    measured = {k: v for k, v in native.metrics.items() if k not in THRESHOLDED and k not in THRESHOLDS}
    assert measured and all(math.isfinite(v) for v in measured.values()), native.metrics
    assert all(math.isnan(native.metrics[k]) for k in (*THRESHOLDED, *THRESHOLDS) if k in native.metrics)


def test_protocol_follows_the_config_and_the_default_is_the_legacy_one() -> None:
    assert protocol_for(JobConfig("bottle")) == LEGACY_PROTOCOL == EvalProtocol()
    assert protocol_for(JobConfig("bottle", top_k=50)).top_k == 50
    with pytest.raises(ValueError, match="unknown eval_resolution 'full'; valid: model, native"):
        JobConfig("bottle", eval_resolution="full")
    # The default leaves job ids as they were before the field existed (results resume); that
    # experiment is spelled out with revision 2's recipe, whose defaults revision 3 changed.
    assert (
        JobConfig.from_dict({**TOOTOUCH_RECIPE, "precision": "auto", "category": "bottle"}).job_id == "bottle-full-s0-f36388480a"
    )
    assert JobConfig("bottle", eval_resolution="native").job_id != JobConfig("bottle").job_id


# ---------------------------------------------------------------------------------------------
# Each data set is scored the way its authors score it
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset, category, scoring",
    [("mvtec", "bottle", "mvtec_ad"), ("synthetic", "bottle", "mvtec_ad"), ("folder", "mine", "mvtec_ad"),
     ("mvtec_ad2", "can", "mvtec_ad2"), ("visa", "candle", "visa"), ("mpdd", "tubes", "mpdd"), ("btad", "01", "btad")],
)  # fmt: skip
def test_every_data_set_records_its_scoring_protocol_and_aupro_limits(dataset: str, category: str, scoring: str) -> None:
    from memseg.data.registry import SCORINGS, get_dataset

    protocol = protocol_for(JobConfig(category, dataset=dataset))
    assert protocol.scoring == scoring == get_dataset(dataset).scoring
    assert (protocol.aupro_fpr_limit, protocol.low_aupro_fpr_limit) == (0.3, 0.05)
    assert set(SCORINGS[scoring].headline) <= set(METRICS)
    assert protocol.columns()["scoring"] == scoring


def test_mvtec_ad2_headline_is_its_authors_aupro_at_0_05_first() -> None:
    from memseg.data.registry import SCORINGS

    assert SCORINGS["mvtec_ad2"].headline[:2] == ("pixel_aupro_low", "pixel_aupro")
    assert SCORINGS["mvtec_ad"].headline == ("image_auroc", "pixel_auroc", "pixel_f1", "pixel_aupro")  # as before


def test_the_job_integrates_aupro_to_its_protocols_limits(monkeypatch) -> None:
    """The limits come from the protocol (a field), not from a constant: another limit, another number."""
    maps, masks = torch.rand(6, 16, 16), torch.zeros(6, 16, 16, dtype=torch.bool)
    masks[3:, 4:9, 4:9] = True
    maps[3:, 4:9, 4:9] += 0.3
    data = type("Data", (), {"test_labels": torch.tensor([0, 0, 0, 1, 1, 1]), "test_masks": masks})()
    scores = image_scores(maps)
    base = job_module.evaluate_under(EvalProtocol(), scores, data, maps).metrics
    other = job_module.evaluate_under(EvalProtocol(aupro_fpr_limit=0.2, low_aupro_fpr_limit=0.01), scores, data, maps).metrics
    assert other["pixel_aupro"] != base["pixel_aupro"] and other["pixel_aupro_low"] != base["pixel_aupro_low"]
    assert other["pixel_auroc"] == base["pixel_auroc"]
