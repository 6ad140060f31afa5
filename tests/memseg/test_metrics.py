"""Tests of memseg.metrics against scikit-learn and a brute-force per-region-overlap reference."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from memseg import metrics as metrics_module
from memseg.metrics import (
    aupro,
    compute_metrics,
    compute_metrics_native,
    image_aupr,
    image_auroc,
    image_scores,
    pixel_auroc,
    pixel_f1_max,
    pro_curve,
    roc_curve_points,
    seg_f1,
)

# 1e-10 (docs/metrics.md): both sides are float64, so much tighter than 1e-6 holds, and it must: one curve point
# too many or too few near the AUPRO limit moves the result by only about 1e-9.
TOL = 1e-10


@pytest.fixture(params=["float sort", "radix sort"])
def sort_path(request, monkeypatch):
    """Large float32 inputs are sorted through int32 keys; run on small data through both paths."""
    if request.param == "radix sort":
        monkeypatch.setattr(metrics_module, "RADIX_SORT_MIN_SIZE", 0)


# ---------------------------------------------------------------------------------------------
# Data and references
# ---------------------------------------------------------------------------------------------


def make_pixel_data(
    seed: int, n: int = 8, size: int = 24, levels: int | None = None, dtype=np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly maps and masks with several blobs per anomalous image and some all-normal images.

    `levels` quantises the scores so that many pixels tie.
    """
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        if i % 3 == 0:
            continue  # a normal image: all-zero mask
        noise = ndimage.gaussian_filter(rng.random((size, size)), sigma=1.5)
        masks[i] = noise > np.quantile(noise, 0.85)  # several irregular blobs
        masks[i, rng.integers(size), rng.integers(size)] = True  # often a 1-pixel region
    maps = rng.random((n, size, size)) + 0.6 * masks * rng.random((n, size, size))
    if levels is not None:
        maps = np.round(maps * levels) / levels
    return maps.astype(dtype), masks


def sklearn_f1_max(maps: np.ndarray, masks: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """F1-max from scikit-learn's precision_recall_curve; also every F1 and its threshold."""
    precision, recall, thresholds = precision_recall_curve(masks.ravel(), maps.ravel())
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(f1.max()), f1, thresholds


@functools.cache
def reference_pro_curve_of(seed: int, levels: int | None) -> tuple[list[float], list[float]]:
    return reference_pro_curve(*make_pixel_data(seed, levels=levels))


def reference_pro_curve(maps: np.ndarray, masks: np.ndarray) -> tuple[list[float], list[float]]:
    """Slow, direct PRO curve: threshold at every distinct score, measure each region's overlap."""
    regions = []  # (image index, region mask)
    for i, mask in enumerate(masks):
        labelled, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
        regions += [(i, labelled == k) for k in range(1, count + 1)]
    normal = ~masks
    fprs, pros = [0.0], [0.0]
    for threshold in np.unique(maps)[::-1]:
        predicted = maps >= threshold
        fprs.append((predicted & normal).sum() / normal.sum())
        pros.append(float(np.mean([predicted[i][region].mean() for i, region in regions])))
    return fprs + [1.0], pros + [1.0]


def reference_aupro(maps: np.ndarray, masks: np.ndarray, limit: float = 0.3) -> float:
    return integrate_to_limit(*reference_pro_curve(maps, masks), limit)


def integrate_to_limit(fprs: list[float], pros: list[float], limit: float) -> float:
    """Trapezoid of a curve segment by segment, the segment crossing the limit interpolated."""
    area = 0.0
    for x0, y0, x1, y1 in zip(fprs[:-1], pros[:-1], fprs[1:], pros[1:]):
        if x1 <= limit:
            area += 0.5 * (y0 + y1) * (x1 - x0)
        elif x0 < limit:
            y_limit = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            area += 0.5 * (y0 + y_limit) * (limit - x0)
    return area / limit


# ---------------------------------------------------------------------------------------------
# image AUROC
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [None, 5])
def test_image_auroc_matches_sklearn(levels, sort_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = rng.normal(size=200) + labels  # negative scores too: exercises the sort key
    if levels is not None:
        scores = np.round(scores * levels) / levels
    expected = roc_auc_score(labels, scores)
    assert image_auroc(torch.from_numpy(scores), torch.from_numpy(labels)) == pytest.approx(expected, abs=TOL)
    assert image_auroc(scores.astype(np.float32), labels.astype(bool)) == pytest.approx(
        roc_auc_score(labels, scores.astype(np.float32)), abs=TOL
    )


def test_image_auroc_constant_scores_is_one_half():
    assert image_auroc(torch.full((10,), 0.7), torch.tensor([0, 1] * 5)) == pytest.approx(0.5, abs=1e-12)


def test_signed_zeros_are_one_threshold(sort_path):
    scores = torch.tensor([-0.0, 0.0, -0.0, 0.0, 1.0, -1.0])
    labels = torch.tensor([1, 0, 0, 1, 1, 0])
    assert image_auroc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-12)


@pytest.mark.parametrize("labels", [[0] * 30, [1] * 30])
def test_image_auroc_single_class_is_a_clear_error(labels):
    kind = "normal" if labels[0] == 0 else "anomalous"
    with pytest.raises(ValueError, match=f"image AUROC is undefined: all 30 test images are labelled {kind}"):
        image_auroc(torch.rand(30), torch.tensor(labels))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores_are_rejected(bad):
    scores = torch.rand(10)
    scores[3] = bad
    with pytest.raises(ValueError, match="finite"):
        image_auroc(scores, torch.tensor([0, 1] * 5))
    maps, masks = make_pixel_data(0, n=3, size=8)
    maps[1, 2, 2] = bad
    for metric in (pixel_auroc, pixel_f1_max, aupro):
        with pytest.raises(ValueError, match="finite"):
            metric(maps, masks)


def test_mismatched_inputs_are_rejected():
    with pytest.raises(ValueError, match="10 scores but 9 labels"):
        image_auroc(torch.rand(10), torch.tensor([0, 1] * 4 + [1]))
    with pytest.raises(ValueError, match="must be binary"):
        image_auroc(torch.rand(4), torch.tensor([0, 1, 2, 1]))
    maps, masks = make_pixel_data(0, n=3, size=8)
    with pytest.raises(ValueError, match="do not match"):
        pixel_auroc(maps, masks[:, :4])
    with pytest.raises(ValueError, match=r"shape \(N, H, W\)"):
        pixel_auroc(maps[:, None], masks[:, None])
    with pytest.raises(ValueError, match="must be binary"):
        pixel_auroc(maps, masks * 0.5)


# ---------------------------------------------------------------------------------------------
# pixel AUROC and F1-max
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [None, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pixel_auroc_matches_sklearn(levels, dtype, sort_path):
    maps, masks = make_pixel_data(2, n=12, size=48, levels=levels, dtype=dtype)
    expected = roc_auc_score(masks.ravel(), maps.ravel())
    assert pixel_auroc(torch.from_numpy(maps), torch.from_numpy(masks)) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("levels", [None, 7])
def test_pixel_f1_max_matches_sklearn_precision_recall_curve(levels, sort_path):
    maps, masks = make_pixel_data(3, n=12, size=48, levels=levels)
    f1, threshold = pixel_f1_max(maps, masks)
    expected_f1, all_f1, thresholds = sklearn_f1_max(maps, masks)
    assert f1 == pytest.approx(expected_f1, abs=TOL)
    # the threshold is a score value, it reaches the max, and it is the lowest one that does
    assert threshold in set(maps.ravel().tolist())
    reaching = thresholds[all_f1 >= expected_f1 - 1e-12]
    assert threshold == pytest.approx(float(reaching.min()), abs=0)
    predicted = maps >= threshold
    tp = (predicted & masks).sum()
    assert 2 * tp / (predicted.sum() + masks.sum()) == pytest.approx(f1, abs=1e-12)


def test_pixel_f1_max_tie_returns_the_lowest_threshold(sort_path):
    # F1 = 2/3 at threshold 0.9 (1 TP, 0 FP) and again at 0.6 (2 TP, 2 FP)
    maps = torch.tensor([[[0.9, 0.8, 0.7, 0.6, 0.1, 0.1]]])
    masks = torch.tensor([[[True, False, False, True, False, False]]])
    f1, threshold = pixel_f1_max(maps, masks)
    assert (f1, threshold) == (pytest.approx(2 / 3, abs=1e-12), pytest.approx(0.6))


def test_constant_pixel_scores():
    maps, masks = make_pixel_data(4, n=6, size=16)
    constant = np.full_like(maps, 0.25)
    assert pixel_auroc(constant, masks) == pytest.approx(0.5, abs=1e-12)
    positives, total = masks.sum(), masks.size
    f1, threshold = pixel_f1_max(constant, masks)
    assert (f1, threshold) == (pytest.approx(2 * positives / (positives + total), abs=1e-12), 0.25)
    # one threshold: the PRO curve is the straight line (0, 0) -> (1, 1), so AUPRO@0.3 = 0.15
    assert aupro(constant, masks) == pytest.approx(0.15, abs=1e-12)


def test_perfect_separation():
    maps, masks = make_pixel_data(5, n=6, size=16)
    perfect = masks + 0.1 * np.random.default_rng(0).random(masks.shape)
    assert pixel_auroc(perfect, masks) == pytest.approx(1.0, abs=1e-12)
    assert pixel_f1_max(perfect, masks)[0] == pytest.approx(1.0, abs=1e-12)
    assert aupro(perfect, masks) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("metric", [pixel_auroc, pixel_f1_max, aupro])
def test_single_class_masks_are_a_clear_error(metric):
    maps = np.random.default_rng(0).random((5, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="undefined: none of the 320 pixels of the 5 masks"):
        metric(maps, np.zeros_like(maps, dtype=bool))
    with pytest.raises(ValueError, match="undefined: all 320 pixels of the 5 masks are anomalous"):
        metric(maps, np.ones_like(maps, dtype=bool))


# ---------------------------------------------------------------------------------------------
# AUPRO
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed, levels", [(6, None), (7, None), (8, 6), (9, 40)])
def test_aupro_matches_brute_force_reference(seed, levels, sort_path):
    maps, masks = make_pixel_data(seed, levels=levels)
    labelled, _ = ndimage.label(masks[1], structure=np.ones((3, 3)))
    assert labelled.max() >= 2, "the data should have an image with several regions"
    assert not masks[0].any(), "the data should include normal images"
    ref_fprs, ref_pros = reference_pro_curve_of(seed, levels)
    num_normal = int((~masks).sum())
    # the paper's limit, both ends, and limits that fall exactly on a curve point (k / #normal)
    for limit in (0.3, 0.05, 1.0, 1 / num_normal, math.floor(0.3 * num_normal) / num_normal, 0.5 + 1 / num_normal):
        expected = integrate_to_limit(ref_fprs, ref_pros, limit)
        assert aupro(maps, masks, fpr_limit=limit) == pytest.approx(expected, abs=TOL), limit


def test_pro_curve_matches_brute_force_reference(sort_path):
    maps, masks = make_pixel_data(10, levels=30)
    fpr, pro = pro_curve(torch.from_numpy(maps), torch.from_numpy(masks))
    ref_fpr, ref_pro = reference_pro_curve(maps, masks)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
    np.testing.assert_allclose(pro, ref_pro, atol=1e-12)
    small_fpr, small_pro = pro_curve(maps, masks, max_points=10)
    assert len(small_fpr) == 10 and (small_fpr[0], small_fpr[-1], small_pro[-1]) == (0.0, 1.0, 1.0)


def test_aupro_integration_limit_on_a_curve_point():
    # 10 normal pixels; the 3 highest are false positives at the second threshold: FPR = 0.3 exactly
    maps = np.array([[[0.9, 0.8, 0.8, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.5]]], dtype=np.float32)
    masks = np.zeros_like(maps, dtype=bool)
    masks[0, 0, [0, 11]] = True  # one region at each end of the row
    # curve: (0, 0) -> (0, 0.5) at 0.9 -> (0.3, 0.5) at 0.8 -> (0.3, 1) at 0.5 -> (1, 1)
    assert aupro(maps, masks) == pytest.approx(0.5, abs=1e-12)
    assert aupro(maps, masks) == pytest.approx(reference_aupro(maps, masks), abs=1e-12)


def test_regions_use_8_connectivity_within_an_image():
    # an L of three pixels and one pixel touching it only diagonally: one region of 4 pixels
    masks = np.zeros((1, 6, 6), dtype=bool)
    masks[0, 1, 1:3] = masks[0, 2, 1] = masks[0, 3, 2] = True
    maps = np.zeros((1, 6, 6), dtype=np.float32)
    maps[0, 3, 2] = 1.0  # only the diagonal pixel is found
    fpr, pro = pro_curve(maps, masks)
    # 8-connectivity: 1/4 of the region; 4-connectivity would give mean(0, 1) = 0.5
    assert (fpr[1], pro[1]) == (0.0, pytest.approx(0.25, abs=1e-12))


def test_regions_do_not_connect_across_images():
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[:, 1:3, 1:3] = True  # the same square in both images: two regions, not one of 8 pixels
    maps = np.zeros((2, 4, 4), dtype=np.float32)
    maps[0, 1:3, 1:3] = 1.0  # the first square found, the second missed
    assert pro_curve(maps, masks)[1][1] == pytest.approx(0.5, abs=1e-12)
    maps[0, 1, 1] = 0.5  # now 3 of 4 pixels of the first region at the top threshold
    assert pro_curve(maps, masks)[1][1] == pytest.approx(0.375, abs=1e-12)


def test_aupro_rejects_a_bad_limit():
    maps, masks = make_pixel_data(0, n=3, size=8)
    for limit in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="fpr_limit"):
            aupro(maps, masks, fpr_limit=limit)


# ---------------------------------------------------------------------------------------------
# Image scores, ROC points, compute_metrics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size, k", [(256, 100), (128, 25), (64, 6), (8, 1), (4, 1)])
def test_image_scores_top_k_scales_with_image_area(size, k):
    generator = torch.Generator().manual_seed(size)
    maps = torch.rand(3, size, size, generator=generator)
    expected = torch.stack([m.flatten().sort(descending=True).values[:k].mean() for m in maps])
    torch.testing.assert_close(image_scores(maps), expected)


def test_image_scores_top_k_is_a_mean_of_the_highest_pixels():
    maps = torch.zeros(2, 64, 64)
    maps[0, :2, :3] = 1.0  # 6 hot pixels: k = 6 at 64 px, the mean is exactly 1
    maps[1, 0, :3] = 1.0  # 3 hot pixels out of 6
    assert image_scores(maps).tolist() == [1.0, 0.5]
    assert image_scores(maps, top_k=1).tolist() == [1.0, 1.0]  # round(1/16) = 0 -> at least 1
    assert image_scores(maps, top_k=100, reference_size=64).tolist() == pytest.approx([0.06, 0.03])  # k = 100


def test_roc_curve_points_match_sklearn():
    maps, masks = make_pixel_data(11, n=4, size=16, levels=20)
    fpr, tpr, thresholds = roc_curve_points(maps, masks)
    ref_fpr, ref_tpr, ref_thresholds = roc_curve(masks.ravel(), maps.ravel(), drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, ref_tpr, atol=1e-12)
    np.testing.assert_allclose(thresholds[1:], ref_thresholds[1:], atol=1e-7)
    trapezoid_area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert trapezoid_area == pytest.approx(pixel_auroc(maps, masks), abs=1e-12)
    small = roc_curve_points(maps, masks, max_points=5)
    assert len(small[0]) == 5 and small[0][-1] == 1.0 and small[1][0] == 0.0


def test_compute_metrics_equals_the_individual_functions(sort_path):
    maps, masks = make_pixel_data(12, n=9, size=32)
    maps_t, masks_t = torch.from_numpy(maps), torch.from_numpy(masks)
    scores = image_scores(maps_t)
    labels = masks_t.flatten(1).any(dim=1)
    result = compute_metrics(scores, labels, maps_t, masks_t)
    f1, threshold = pixel_f1_max(maps_t, masks_t)
    assert result == {
        "image_auroc": image_auroc(scores, labels),
        "image_aupr": image_aupr(scores, labels),
        "pixel_auroc": pixel_auroc(maps_t, masks_t),
        "pixel_f1": f1,
        "pixel_f1_threshold": threshold,
        "pixel_aupro": aupro(maps_t, masks_t),
        "pixel_aupro_low": aupro(maps_t, masks_t, fpr_limit=0.05),
    }
    assert all(type(value) is float for value in result.values())


def test_both_sort_paths_give_identical_metrics(monkeypatch):
    maps, masks = make_pixel_data(14, n=6, size=32, levels=50)
    maps = torch.from_numpy(maps) - 2.0  # negative scores only, many ties
    scores, labels = image_scores(maps), torch.from_numpy(masks).flatten(1).any(dim=1)
    float_sorted = compute_metrics(scores, labels, maps, torch.from_numpy(masks))
    monkeypatch.setattr(metrics_module, "RADIX_SORT_MIN_SIZE", 0)
    assert compute_metrics(scores, labels, maps, torch.from_numpy(masks)) == float_sorted
    assert float_sorted["pixel_f1_threshold"] < 0


def test_compute_metrics_without_masks_has_nan_pixel_metrics():
    maps, masks = make_pixel_data(13, n=6, size=16)
    labels = masks.reshape(6, -1).any(axis=1)
    result = compute_metrics(image_scores(torch.from_numpy(maps)), labels, maps, None)
    assert result["image_auroc"] == image_auroc(image_scores(torch.from_numpy(maps)), labels)
    pixel_keys = ("pixel_auroc", "pixel_f1", "pixel_f1_threshold", "pixel_aupro", "pixel_aupro_low")
    assert all(math.isnan(result[key]) for key in pixel_keys)
    with pytest.raises(ValueError, match="6 image scores but 5 anomaly maps"):
        compute_metrics(torch.rand(6), labels, maps[:5], masks[:5])


# ---------------------------------------------------------------------------------------------
# AUPRO at MVTec AD 2's limit, image AUPR, SegF1
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed, levels", [(6, None), (8, 6)])
def test_pixel_aupro_low_is_the_brute_force_aupro_at_0_05(seed, levels, sort_path):
    maps, masks = make_pixel_data(seed, levels=levels)
    labels = masks.reshape(len(masks), -1).any(axis=1)
    scores = image_scores(torch.from_numpy(maps))
    expected = integrate_to_limit(*reference_pro_curve_of(seed, levels), 0.05)
    result = compute_metrics(scores, labels, maps, masks)
    assert result["pixel_aupro_low"] == pytest.approx(expected, abs=TOL)
    assert result["pixel_aupro"] == pytest.approx(integrate_to_limit(*reference_pro_curve_of(seed, levels), 0.3), abs=TOL)
    # the limits are arguments (the protocol's fields), not constants
    other = compute_metrics(scores, labels, maps, masks, fpr_limit=0.2, low_fpr_limit=0.01)
    assert other["pixel_aupro_low"] == pytest.approx(integrate_to_limit(*reference_pro_curve_of(seed, levels), 0.01), abs=TOL)
    assert other["pixel_aupro"] == pytest.approx(integrate_to_limit(*reference_pro_curve_of(seed, levels), 0.2), abs=TOL)
    # at native resolution with masks already at the maps' size, the same numbers
    native = compute_metrics_native(scores, labels, maps, list(masks))
    assert native["pixel_aupro_low"] == pytest.approx(expected, abs=TOL)
    with pytest.raises(ValueError, match="fpr_limit must lie in"):
        compute_metrics(scores, labels, maps, masks, low_fpr_limit=0.0)


@pytest.mark.parametrize("levels", [None, 4])
def test_image_aupr_is_sklearns_average_precision(levels, sort_path):
    rng = np.random.default_rng(3)
    scores = rng.random(60)
    if levels:
        scores = np.round(scores * levels) / levels  # ties
    labels = rng.random(60) < 0.4
    assert image_aupr(scores, labels) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_seg_f1_by_hand():
    # two 2x3 images; scores >= 0.5 are predicted anomalous
    maps = np.array([[[0.9, 0.5, 0.1], [0.2, 0.7, 0.0]], [[0.6, 0.1, 0.1], [0.1, 0.1, 0.4]]], dtype=np.float32)
    masks = np.array([[[1, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 1]]], dtype=bool)
    # predicted: (0,0,0) (0,0,1) (0,1,1) (1,0,0); anomalous: (0,0,0) (0,0,1) (1,1,2)
    # TP = 2, FP = 2, FN = 1: F1 = 2*2 / (2*2 + 2 + 1) = 4/7
    assert seg_f1(maps, masks, 0.5) == pytest.approx(4 / 7, abs=1e-15)
    # >= decides a tie at the threshold: at 0.9 only the 0.9 pixel is predicted, TP 1, FP 0, FN 2: 2/4
    assert seg_f1(maps, masks, 0.9) == pytest.approx(0.5, abs=1e-15)
    assert seg_f1(maps, masks, 1.5) == 0.0  # nothing predicted
    assert seg_f1(maps, masks, -1.0) == pytest.approx(2 * 3 / (12 + 3), abs=1e-15)  # everything predicted
    with pytest.raises(ValueError, match="finite"):
        seg_f1(maps, masks, float("nan"))


def test_seg_f1_at_the_f1_max_threshold_is_f1_max(sort_path):
    maps, masks = make_pixel_data(11, levels=20)
    f1, threshold = pixel_f1_max(maps, masks)
    assert seg_f1(maps, masks, threshold) == pytest.approx(f1, abs=1e-12)
