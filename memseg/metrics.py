"""Evaluation metrics of MemSeg: image AUROC and AUPR, pixel AUROC, pixel F1-max, AUPRO up to two
false positive rates (0.3 and 0.05 by default), and the F1 of a map binarised at a given threshold.

Exact definitions (docs/metrics.md), so numbers compare with the literature; the pixel
metrics, and the curves the report plots, share one sort of the pooled scores (`evaluate`,
`evaluate_native`). The metric names and their labels are memseg.result.METRICS, the result
contract every table reads. A change that gives any metric another value for the same inputs must bump
memseg.protocol.METRICS_VERSION (recorded on every result row).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

ArrayLike = torch.Tensor | np.ndarray

# 8-connectivity inside each image and none across images: the official MVTec AD evaluation
# code labels each ground truth map with scipy.ndimage.label and a 3x3 all-ones structure.
# Labelling the (N, H, W) stack at once with that 3x3 as the middle plane of a 3x3x3 structure
# (no links between images) gives globally unique region ids in one call.
_REGION_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_REGION_STRUCTURE[1] = True

# From this many scores on, float32 scores are sorted as int32 keys (a parallel radix sort in
# PyTorch); below it the float sort is faster, as the radix sort has a fixed cost of its own.
RADIX_SORT_MIN_SIZE = 1 << 21

# The second AUPRO limit (pixel_aupro_low): MVTec AD 2's published AU-PRO is integrated up to a
# false positive rate of 0.05. The job passes its protocol's value (memseg.protocol).
LOW_FPR_LIMIT = 0.05


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def image_scores(anomaly_maps: ArrayLike, top_k: int = 100, reference_size: int = 256) -> torch.Tensor:
    """Image anomaly score = mean of the k highest pixel anomaly probabilities of each map.

    MemSeg scores an image by the mean of its top-100 pixels at 256x256. So that a smaller image
    keeps the same *fraction* of its area, k is scaled with the image area:

        k = max(1, round(top_k * H * W / reference_size**2))   (Python round; capped at H * W)

    e.g. 100 at 256 px, 25 at 128 px, 6 at 64 px (100 / 16 = 6.25). Images larger than the
    reference use proportionally more pixels by the same rule.

    anomaly_maps: (N, H, W) floating. Returns (N,) in the maps' dtype.
    """
    maps = _as_cpu_tensor(anomaly_maps, "anomaly_maps")
    if maps.ndim != 3:
        raise ValueError(f"image_scores expects anomaly maps of shape (N, H, W), got {tuple(maps.shape)}")
    if top_k < 1 or reference_size < 1:
        raise ValueError(f"top_k and reference_size must be >= 1, got top_k={top_k}, reference_size={reference_size}")
    maps = _as_float(maps, "anomaly_maps")
    n, h, w = maps.shape
    k = min(h * w, max(1, round(top_k * h * w / reference_size**2)))
    if n == 0:
        return maps.new_zeros(0)
    return maps.reshape(n, h * w).topk(k, dim=1, sorted=False).values.mean(dim=1)


def image_auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Exact ROC AUC of image scores against image labels (1 = anomalous).

    Trapezoid over the distinct score values (ties form one ROC point), as scikit-learn's
    roc_auc_score does; no binning.
    """
    return _auroc_from_sweep(_image_sweep(scores, labels))


def pixel_auroc(maps: ArrayLike, masks: ArrayLike) -> float:
    """Exact ROC AUC over all pixels of all images pooled (normal images: all-zero masks)."""
    scores, labels, _ = _pixel_inputs(maps, masks, "pixel AUROC")
    return _auroc_from_sweep(_sweep(scores, labels))


def pixel_f1_max(maps: ArrayLike, masks: ArrayLike) -> tuple[float, float]:
    """Maximum F1 over all thresholds of the pooled pixel precision-recall curve, and its threshold.

    Thresholds are the distinct score values; a pixel is predicted anomalous when its score is
    >= the threshold (scikit-learn's precision_recall_curve). When several thresholds reach the
    same maximum, the lowest is returned (what argmax over precision_recall_curve's ascending
    thresholds gives, as anomalib does).
    """
    scores, labels, _ = _pixel_inputs(maps, masks, "pixel F1")
    return _f1_max_from_sweep(_sweep(scores, labels))


def image_aupr(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the precision-recall curve of image scores (1 = anomalous), as average precision:
    sum over the distinct score values t, descending, of (recall(t) - recall(t_prev)) * precision(t),
    a step sum with no interpolation (scikit-learn's average_precision_score)."""
    return _average_precision_from_sweep(_image_sweep(scores, labels))


def seg_f1(maps: ArrayLike, masks: ArrayLike, threshold: float) -> float:
    """F1 of the maps binarised at `threshold` against the masks, all pixels of all images pooled:
    a pixel is predicted anomalous when its score is >= threshold (the rule of pixel F1-max), and
    F1 = 2 TP / (2 TP + FP + FN). MVTec AD 2's SegF1, with the threshold chosen on defect-free
    images, never on the test set. A threshold above every score predicts nothing: F1 0."""
    if not math.isfinite(threshold):
        raise ValueError(f"seg_f1: the threshold must be a finite number, got {threshold}")
    scores, labels, _ = _pixel_inputs(maps, masks, "SegF1")
    predicted = scores >= threshold
    true_pos = int(torch.count_nonzero(predicted & labels))
    predicted_pos = int(torch.count_nonzero(predicted))
    return 2.0 * true_pos / (predicted_pos + int(torch.count_nonzero(labels)))


def seg_f1_native(maps: ArrayLike, native_masks: Sequence[ArrayLike], threshold: float) -> float:
    """`seg_f1` with each (S, S) map upsampled bilinearly to its mask's original size first, as the
    native-resolution pixel metrics (`evaluate_native`) do; sizes may differ between images."""
    if not math.isfinite(threshold):
        raise ValueError(f"seg_f1: the threshold must be a finite number, got {threshold}")
    maps_t = _as_float(_as_cpu_tensor(maps, "maps"), "maps")
    if maps_t.ndim != 3 or len(native_masks) != maps_t.shape[0]:
        raise ValueError(f"seg_f1: {len(native_masks)} masks for anomaly maps of shape {tuple(maps_t.shape)}")
    true_pos = predicted_pos = actual_pos = 0
    for anomaly_map, mask in zip(maps_t, native_masks):
        labels = _as_binary(_as_cpu_tensor(mask, "native mask"), "native masks")
        predicted = upsample_map(anomaly_map, (labels.shape[0], labels.shape[1])) >= threshold
        true_pos += int(torch.count_nonzero(predicted & labels))
        predicted_pos += int(torch.count_nonzero(predicted))
        actual_pos += int(torch.count_nonzero(labels))
    if actual_pos == 0:
        raise ValueError("SegF1 is undefined: no pixel of any mask is anomalous")
    return 2.0 * true_pos / (predicted_pos + actual_pos)


def image_threshold_metrics(scores: ArrayLike, labels: ArrayLike, threshold: float) -> dict[str, float]:
    """Whether each image is anomalous at `threshold` (score >= threshold), against its label:
    image_precision TP / (TP + FP) (0 when no image is called anomalous, as scikit-learn's
    zero_division=0), image_recall TP / P, image_f1 2 TP / (2 TP + FP + FN) and image_fpr FP / N."""
    if not math.isfinite(threshold):
        raise ValueError(f"image thresholds: the threshold must be a finite number, got {threshold}")
    sweep = _image_sweep(scores, labels)  # checks both, and that both classes are present
    scores_t = _as_float(_as_cpu_tensor(scores, "scores").reshape(-1), "scores")
    labels_t = _as_binary(_as_cpu_tensor(labels, "labels").reshape(-1), "image labels")
    predicted = scores_t >= threshold
    true_pos = int(torch.count_nonzero(predicted & labels_t))
    false_pos = int(torch.count_nonzero(predicted & ~labels_t))
    return {
        "image_precision": true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0,
        "image_recall": true_pos / sweep.num_pos,
        "image_f1": 2.0 * true_pos / (true_pos + false_pos + sweep.num_pos),
        "image_fpr": false_pos / sweep.num_neg,
    }


def aupro(maps: ArrayLike, masks: ArrayLike, fpr_limit: float = 0.3) -> float:
    """Normalised area under the per-region-overlap curve up to a false positive rate of `fpr_limit`.

    As the official MVTec AD evaluation code (compute_pro + trapezoid with x_max):
    - regions are the 8-connected components of each ground truth mask;
    - at each threshold t (every distinct score), PRO(t) = mean over all regions of all images
      of |{score >= t} & region| / |region|, and FPR(t) = false positive pixels / all normal
      pixels, pooled over all images (normal images included);
    - the curve, from (0, 0) to (1, 1), is integrated with the trapezoid rule up to
      FPR = fpr_limit, the PRO at exactly fpr_limit linearly interpolated between its
      neighbours, and the area divided by fpr_limit.
    The official code keeps the FPRs in float32; here all curve values are float64.
    """
    _check_fpr_limit(fpr_limit)
    scores, labels, shape = _pixel_inputs(maps, masks, "AUPRO")
    regions = _label_regions(labels.view(shape))
    return _aupro_from_sweep(_sweep(scores, labels, regions), fpr_limit)


def pro_curve(maps: ArrayLike, masks: ArrayLike, max_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The per-region-overlap curve (fpr, pro), float64, from (0, 0) to (1, 1), for plots.

    One point per distinct score, as `aupro` integrates it; `max_points` keeps that many points
    evenly spaced along the curve (first and last kept), for plotting only.
    """
    scores, labels, shape = _pixel_inputs(maps, masks, "AUPRO")
    regions = _label_regions(labels.view(shape))
    fpr, pro = _downsample(_pro_points(_sweep(scores, labels, regions)), max_points)
    return fpr, pro


def roc_curve_points(
    scores: ArrayLike, labels: ArrayLike, max_points: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve (fpr, tpr, thresholds), float64, for plots, of image scores or of pixel maps.

    scores and labels have the same shape ((N,) for images, (N, H, W) for pixels pooled).
    Like scikit-learn's roc_curve(drop_intermediate=False): one point per distinct score plus a
    first point (0, 0) at threshold +inf. `max_points` keeps that many points evenly spaced.
    """
    scores_t = _check_finite(_as_float(_as_cpu_tensor(scores, "scores"), "scores"), "scores")
    labels_t = _as_binary(_as_cpu_tensor(labels, "labels"), "labels")
    if scores_t.shape != labels_t.shape:
        raise ValueError(f"ROC curve: scores {tuple(scores_t.shape)} and labels {tuple(labels_t.shape)} differ in shape")
    scores_t, labels_t = scores_t.reshape(-1), labels_t.reshape(-1)
    _check_two_classes(labels_t, "ROC curve", "samples")
    fpr, tpr, thresholds = _roc_points(_sweep(scores_t, labels_t), max_points)
    return fpr, tpr, thresholds


@dataclass(frozen=True)
class Curve:
    """Points of a curve for plots, float64: x is the false positive rate, y the true positive
    rate (ROC) or the per-region overlap (PRO); from (0, 0) on."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """The metrics of one test set (as `compute_metrics`) and the curves behind them: image ROC
    always, pixel ROC and PRO when there are masks (else None)."""

    metrics: dict[str, float]
    image_roc: Curve
    pixel_roc: Curve | None
    pro: Curve | None


def evaluate(
    image_scores: ArrayLike,
    image_labels: ArrayLike,
    maps: ArrayLike,
    masks: ArrayLike | None,
    fpr_limit: float = 0.3,
    max_curve_points: int | None = None,
    low_fpr_limit: float = LOW_FPR_LIMIT,
) -> Evaluation:
    """Every metric of one category's test set and its curves, from ONE sort of the pooled pixel
    scores (and one of the image scores). `max_curve_points` thins the curves for plotting (the
    metrics are always exact); the pixel ROC and PRO curves are None without masks."""
    image_sweep, pixel_sweep = _sweeps(image_scores, image_labels, maps, masks, fpr_limit)
    _check_fpr_limit(low_fpr_limit)
    return _evaluation(image_sweep, pixel_sweep, (fpr_limit, low_fpr_limit), max_curve_points)


def _evaluation(
    image_sweep: _Sweep, pixel_sweep: _Sweep | None, fpr_limits: tuple[float, float], max_curve_points: int | None
) -> Evaluation:
    """The metrics and the curves read off the two sweeps."""
    fpr, tpr, _ = _roc_points(image_sweep, max_curve_points)
    pixel_roc = pro = None
    if pixel_sweep is not None:
        fpr_px, tpr_px, _ = _roc_points(pixel_sweep, max_curve_points)
        pixel_roc = Curve(fpr_px, tpr_px)
        pro = Curve(*_downsample(_pro_points(pixel_sweep), max_curve_points))
    metrics = _metrics_from_sweeps(image_sweep, pixel_sweep, fpr_limits)
    return Evaluation(metrics, Curve(fpr, tpr), pixel_roc, pro)


def compute_metrics(
    image_scores: ArrayLike,
    image_labels: ArrayLike,
    maps: ArrayLike,
    masks: ArrayLike | None,
    fpr_limit: float = 0.3,
    low_fpr_limit: float = LOW_FPR_LIMIT,
) -> dict[str, float]:
    """All metrics of one category's test set; the pixel metrics share one sort of the maps.

    Returns image_auroc, image_aupr, pixel_auroc, pixel_f1, pixel_f1_threshold, pixel_aupro (AUPRO
    up to `fpr_limit`) and pixel_aupro_low (AUPRO up to `low_fpr_limit`). Without masks (a data set
    that has none) the pixel metrics are NaN. Values are identical to those of the individual
    functions. `evaluate` adds the curves.
    """
    _check_fpr_limit(low_fpr_limit)
    sweeps = _sweeps(image_scores, image_labels, maps, masks, fpr_limit)
    return _metrics_from_sweeps(*sweeps, (fpr_limit, low_fpr_limit))


def _sweeps(
    image_scores: ArrayLike, image_labels: ArrayLike, maps: ArrayLike, masks: ArrayLike | None, fpr_limit: float
) -> tuple[_Sweep, _Sweep | None]:
    """The image sweep and the pixel sweep (with regions; None without masks), inputs checked."""
    image_sweep = _image_sweep(image_scores, image_labels)
    num_maps = _as_cpu_tensor(maps, "maps").shape[0]
    num_scores = image_sweep.num_pos + image_sweep.num_neg
    if num_maps != num_scores:
        raise ValueError(f"compute_metrics: {num_scores} image scores but {num_maps} anomaly maps")
    if masks is None:
        return image_sweep, None
    _check_fpr_limit(fpr_limit)
    scores, labels, shape = _pixel_inputs(maps, masks, "pixel metrics (pixel AUROC, F1, AUPRO)")
    return image_sweep, _sweep(scores, labels, _label_regions(labels.view(shape)))


def _metrics_from_sweeps(image_sweep: _Sweep, pixel_sweep: _Sweep | None, fpr_limits: tuple[float, float]) -> dict[str, float]:
    """The metrics of the two sweeps; `fpr_limits`: the AUPRO limits of pixel_aupro and pixel_aupro_low."""
    metrics = {"image_auroc": _auroc_from_sweep(image_sweep), "image_aupr": _average_precision_from_sweep(image_sweep)}
    if pixel_sweep is None:
        nan = float("nan")
        metrics.update(pixel_auroc=nan, pixel_f1=nan, pixel_f1_threshold=nan, pixel_aupro=nan, pixel_aupro_low=nan)
        return metrics
    f1, threshold = _f1_max_from_sweep(pixel_sweep)
    metrics.update(
        pixel_auroc=_auroc_from_sweep(pixel_sweep),
        pixel_f1=f1,
        pixel_f1_threshold=threshold,
        pixel_aupro=_aupro_from_sweep(pixel_sweep, fpr_limits[0]),
        pixel_aupro_low=_aupro_from_sweep(pixel_sweep, fpr_limits[1]),
    )
    return metrics


def evaluate_native(
    image_scores: ArrayLike,
    image_labels: ArrayLike,
    maps: ArrayLike,
    native_masks: Sequence[ArrayLike] | None,
    fpr_limit: float = 0.3,
    max_curve_points: int | None = None,
    low_fpr_limit: float = LOW_FPR_LIMIT,
) -> Evaluation:
    """`evaluate` with the pixel metrics (and pixel curves) at each mask's ORIGINAL size, as the
    official MVTec AD evaluation computes them: each (S, S) anomaly map is upsampled bilinearly
    (align_corners=False, no antialiasing) to its mask's (H_i, W_i), the mask is used untouched,
    and the pixels of all images are pooled; regions are the 8-connected components of each
    original mask. Sizes may differ between images. The image scores are given (computed at the
    model's resolution), so image AUROC is the same as in `evaluate`.

    native_masks: one (H_i, W_i) binary mask per map (all zeros for normal images), or None for a
    data set without masks (pixel metrics NaN). Memory grows with the pooled pixel count (about
    30 bytes per pixel at the peak: 150 MVTec images at 1024 px need about 5 GB).
    """
    if native_masks is None:
        return evaluate(image_scores, image_labels, maps, None, fpr_limit, max_curve_points, low_fpr_limit)
    _check_fpr_limit(low_fpr_limit)
    image_sweep = _image_sweep(image_scores, image_labels)
    pixel_sweep = _native_pixel_sweep(maps, native_masks, image_sweep.num_pos + image_sweep.num_neg, fpr_limit)
    return _evaluation(image_sweep, pixel_sweep, (fpr_limit, low_fpr_limit), max_curve_points)


def compute_metrics_native(
    image_scores: ArrayLike,
    image_labels: ArrayLike,
    maps: ArrayLike,
    native_masks: Sequence[ArrayLike] | None,
    fpr_limit: float = 0.3,
    low_fpr_limit: float = LOW_FPR_LIMIT,
) -> dict[str, float]:
    """The metrics of `evaluate_native` (pixel metrics at each mask's original size)."""
    return evaluate_native(image_scores, image_labels, maps, native_masks, fpr_limit, low_fpr_limit=low_fpr_limit).metrics


def _native_pixel_sweep(maps: ArrayLike, native_masks: Sequence[ArrayLike], num_scores: int, fpr_limit: float) -> _Sweep:
    """The pixel sweep (with regions) of maps upsampled to their masks' original sizes, checked."""
    _check_fpr_limit(fpr_limit)
    maps_t = _as_float(_as_cpu_tensor(maps, "maps"), "maps")
    if maps_t.ndim != 3:
        raise ValueError(f"native pixel metrics: anomaly maps must have shape (N, H, W), got {tuple(maps_t.shape)}")
    if len(native_masks) != maps_t.shape[0]:
        raise ValueError(f"native pixel metrics: {len(native_masks)} masks but {maps_t.shape[0]} anomaly maps")
    if maps_t.shape[0] != num_scores:
        raise ValueError(f"compute_metrics_native: {num_scores} image scores but {maps_t.shape[0]} anomaly maps")
    masks = [_as_binary(_as_cpu_tensor(m, "native mask"), "native masks") for m in native_masks]
    for i, mask in enumerate(masks):
        if mask.ndim != 2:
            raise ValueError(f"native pixel metrics: mask {i} must have shape (H, W), got {tuple(mask.shape)}")
    scores = torch.cat([upsample_map(m, (mask.shape[0], mask.shape[1])).reshape(-1) for m, mask in zip(maps_t, masks)])
    scores = _check_finite(scores, "native pixel metrics: anomaly maps")
    labels = torch.cat([mask.reshape(-1) for mask in masks])
    _check_two_classes(labels, "native pixel metrics (pixel AUROC, F1, AUPRO)", "pixels")
    return _sweep(scores, labels, _label_regions_each(masks))


def upsample_map(anomaly_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(h, w) -> size, bilinear with align_corners=False; unchanged when the size is already right.

    Interpolated in float64, then rounded once to the map's dtype: float32 arithmetic would put
    last-bit noise into the result (a constant patch would not stay constant), and which pixels
    tie decides the curves. The pooled scores stay in the map's dtype to keep memory down.
    """
    if tuple(anomaly_map.shape) == tuple(size):
        return anomaly_map
    wide = F.interpolate(anomaly_map.double()[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return wide.to(anomaly_map.dtype)


# --------------------------------------------------------------------------------------------
# The shared sweep: one descending sort, cumulative counts at the end of each tie group
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Regions:
    """Ground-truth connected components: a globally unique id per pixel (0 = normal)."""

    ids: torch.Tensor  # (P_total,) int32, flattened like the scores
    sizes: torch.Tensor  # (R + 1,) int64, sizes[0] unused
    count: int


@dataclass(frozen=True)
class _Sweep:
    """One entry per distinct score, descending: counts of pixels with score >= threshold."""

    thresholds: torch.Tensor  # (G,) the distinct scores, descending
    tps: torch.Tensor  # (G,) int64 positives with score >= threshold
    fps: torch.Tensor  # (G,) int64 negatives with score >= threshold
    num_pos: int
    num_neg: int
    # (num_pos + 1,) float64, when regions were given: overlap_sum[j] is the PRO reached once the
    # j highest-scoring anomalous pixels are predicted positive, so PRO(t_g) = overlap_sum[tps[g]].
    overlap_sum: torch.Tensor | None

    def pro(self, count: int | None = None) -> torch.Tensor:
        """PRO at the first `count` thresholds (all by default), float64."""
        assert self.overlap_sum is not None, "the sweep was computed without regions"
        return self.overlap_sum[self.tps[:count]]


def _sweep(scores: torch.Tensor, labels: torch.Tensor, regions: _Regions | None = None) -> _Sweep:
    """Sort once, then read every curve off cumulative sums evaluated at the tie-group ends.

    A tie group (equal scores) is one threshold, so only its last index is a curve point. PRO(t)
    is the sum over anomalous pixels with score >= t of 1 / (R * size of the pixel's region): a
    cumulative sum over the anomalous pixels in sorted order, read at the number of positives
    above t. At 9.8 M pixels every full-size int64 array is 78 MB, and fresh pages cost as
    much time as the arithmetic, so temporaries are few and freed early.
    """
    n = scores.numel()
    order, sorted_key = _sort_descending(scores)
    is_end = torch.empty(n, dtype=torch.bool)
    torch.ne(sorted_key[1:], sorted_key[:-1], out=is_end[:-1])
    is_end[-1] = True
    ends = torch.nonzero(is_end).squeeze(1)  # last index of each tie group
    del is_end
    thresholds = _key_to_scores_(sorted_key[ends], scores.dtype)
    del sorted_key
    labels_sorted = labels[order]
    tps = torch.cumsum(labels_sorted, 0, dtype=torch.int64)[ends]
    fps = ends.add_(1).sub_(tps)  # ends + 1 pixels have score >= threshold; reuses `ends`
    del ends
    num_pos = int(tps[-1])
    overlap_sum = None
    if regions is not None:
        pos_pixels = order[torch.nonzero(labels_sorted).squeeze(1)]  # anomalous pixels, descending
        del order, labels_sorted
        weights = torch.zeros(num_pos + 1, dtype=torch.float64)
        weights[1:] = (1.0 / regions.sizes.double())[regions.ids[pos_pixels]]
        overlap_sum = torch.cumsum(weights, 0).div_(regions.count)
    return _Sweep(thresholds=thresholds, tps=tps, fps=fps, num_pos=num_pos, num_neg=n - num_pos, overlap_sum=overlap_sum)


def _sort_descending(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(order, sorted_key): the permutation sorting `scores` descending, and the sorted keys,
    which tie exactly where the scores tie (`_key_to_scores_` maps keys back to scores).

    Many float32 scores are sorted through an order-preserving int32 key, because PyTorch sorts
    integers on the CPU with a radix sort, about 3.5x faster than its float sort (0.23 s vs
    0.83 s for 9.8 M values on 2 idle cores), but with a fixed cost of its own (tens of ms, more
    when the cores are busy). -0.0 is folded into +0.0 first (x + 0.0) so that equal floats get
    equal keys. Other dtypes and small inputs are sorted as they are.
    """
    if scores.dtype != torch.float32 or scores.numel() < RADIX_SORT_MIN_SIZE:
        sorted_scores, order = torch.sort(scores, descending=True)
        return order, sorted_scores
    key = _flip_float_bits((scores + 0.0).view(torch.int32))
    key.bitwise_not_()  # = -key - 1: reverses the order, so ascending keys are descending scores
    sorted_key, order = torch.sort(key)
    return order, sorted_key


def _flip_float_bits(bits: torch.Tensor) -> torch.Tensor:
    """In place: the IEEE bits of a float32 as an int32 that orders like the float.

    Negative floats (sign bit set, so negative as int32) get their magnitude bits flipped, so
    that more negative -> smaller. The map is its own inverse.
    """
    negative_mask = (bits >> 31).bitwise_and_(0x7FFFFFFF)
    return bits.bitwise_xor_(negative_mask)


def _key_to_scores_(keys: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Invert the float32 sort key of `_sort_descending`, in place."""
    if keys.dtype == dtype:  # the scores were sorted as they are
        return keys
    return _flip_float_bits(keys.bitwise_not_()).view(torch.float32)


def _auroc_from_sweep(sweep: _Sweep) -> float:
    """Trapezoid under the ROC points (0, 0), (fps_g / N, tps_g / P).

    Twice the area times P * N is sum_g (fps_g - fps_{g-1}) * (tps_g + tps_{g-1}), an integer
    summed exactly in int64 (it is at most 2 * P * N <= n**2 / 2), then divided once.
    """
    d_fps = torch.empty_like(sweep.fps)
    d_fps[0] = sweep.fps[0]
    torch.sub(sweep.fps[1:], sweep.fps[:-1], out=d_fps[1:])
    tps_pair = sweep.tps.clone()
    tps_pair[1:] += sweep.tps[:-1]
    twice_area = int(d_fps.mul_(tps_pair).sum())
    return twice_area / (2.0 * sweep.num_pos * sweep.num_neg)


def _f1_max_from_sweep(sweep: _Sweep) -> tuple[float, float]:
    """F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (TP + FP + P) at each threshold; the max and where."""
    predicted_plus_actual = torch.add(sweep.tps, sweep.fps).add_(sweep.num_pos)
    f1 = sweep.tps.double().mul_(2.0).div_(predicted_plus_actual)
    del predicted_plus_actual
    best = f1.max()
    # thresholds are descending: the last index reaching the max is the lowest threshold.
    index = int(torch.nonzero(f1 == best)[-1])
    return float(best), float(sweep.thresholds[index])


def _average_precision_from_sweep(sweep: _Sweep) -> float:
    """sum_g (tps_g - tps_{g-1}) / P * tps_g / (tps_g + fps_g): precision at each distinct threshold
    weighted by the recall it adds (scikit-learn's average_precision_score)."""
    d_tps = torch.diff(sweep.tps, prepend=sweep.tps.new_zeros(1)).double()
    precision = sweep.tps.double() / (sweep.tps + sweep.fps).double()
    return float((d_tps * precision).sum() / sweep.num_pos)


def _image_sweep(scores: ArrayLike, labels: ArrayLike) -> _Sweep:
    """The sweep of image scores against image labels, after checking both."""
    scores_t = _check_finite(_as_float(_as_cpu_tensor(scores, "scores").reshape(-1), "scores"), "image scores")
    labels_t = _as_binary(_as_cpu_tensor(labels, "labels").reshape(-1), "image labels")
    if scores_t.numel() != labels_t.numel():
        raise ValueError(f"image AUROC: {scores_t.numel()} scores but {labels_t.numel()} labels")
    _check_two_classes(labels_t, "image AUROC", "test images")
    return _sweep(scores_t, labels_t)


def _roc_points(sweep: _Sweep, max_points: int | None) -> tuple[np.ndarray, ...]:
    """(fpr, tpr, thresholds) with (0, 0) at threshold +inf prepended, thinned to `max_points`."""
    fpr = np.concatenate(([0.0], sweep.fps.numpy() / sweep.num_neg))
    tpr = np.concatenate(([0.0], sweep.tps.numpy() / sweep.num_pos))
    thresholds = np.concatenate(([np.inf], sweep.thresholds.double().numpy()))
    return _downsample((fpr, tpr, thresholds), max_points)


def _pro_points(sweep: _Sweep, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, pro) with (0, 0) prepended and (1, 1) appended, clipped to <= 1, as the official code.

    `count` keeps only the first `count` points of that curve (AUPRO needs only FPR <= limit).
    """
    inner = sweep.fps.numel() if count is None else max(0, min(count - 1, sweep.fps.numel()))
    fpr = np.concatenate(([0.0], np.minimum(sweep.fps[:inner].numpy() / sweep.num_neg, 1.0), [1.0]))
    pro = np.concatenate(([0.0], np.minimum(sweep.pro(inner).numpy(), 1.0), [1.0]))
    return fpr, pro


def _aupro_from_sweep(sweep: _Sweep, fpr_limit: float) -> float:
    """Trapezoid of PRO over FPR up to fpr_limit (PRO interpolated there), divided by fpr_limit.

    Mirrors the official trapezoid(x, y, x_max): keep the points with x <= x_max; if x_max is
    not itself a point, add the piece up to x_max, y linearly interpolated between its
    neighbours. Only the curve up to the first point beyond the limit is materialised.
    """
    # Every group with fps / num_neg <= fpr_limit in float64 has fps <= floor(limit * N) + 1; the
    # first group past `within` has fps >= floor(limit * N) + 3, so its FPR is surely > limit.
    within = int(torch.searchsorted(sweep.fps, math.floor(fpr_limit * sweep.num_neg) + 2, right=True))
    fpr, pro = _pro_points(sweep, count=within + 2)  # (0, 0), `within` points and the next one
    end = int(np.searchsorted(fpr, fpr_limit, side="right"))  # fpr[:end] <= fpr_limit
    x, y = fpr[:end], pro[:end]
    area = float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])))
    if x[-1] < fpr_limit:  # fpr_limit lies strictly between fpr[end - 1] and fpr[end]
        y_limit = y[-1] + (pro[end] - y[-1]) * (fpr_limit - x[-1]) / (fpr[end] - x[-1])
        area += 0.5 * (y_limit + y[-1]) * (fpr_limit - x[-1])
    return float(area / fpr_limit)


# --------------------------------------------------------------------------------------------
# Input checks and conversions
# --------------------------------------------------------------------------------------------


def _label_regions(masks: torch.Tensor) -> _Regions:
    """8-connected components of every mask, numbered across all images (one scipy call)."""
    ids, count = ndimage.label(masks.numpy(), structure=_REGION_STRUCTURE)
    ids_t = torch.from_numpy(ids.reshape(-1))
    sizes = torch.bincount(ids_t, minlength=count + 1)
    return _Regions(ids=ids_t, sizes=sizes, count=int(count))


def _label_regions_each(masks: Sequence[torch.Tensor]) -> _Regions:
    """8-connected components of masks of any sizes, numbered across all of them, flattened in
    the order the masks are concatenated."""
    ids_list, offset = [], 0
    for mask in masks:
        ids, count = ndimage.label(mask.numpy(), structure=_REGION_STRUCTURE[1])
        ids = torch.from_numpy(ids.reshape(-1).astype(np.int64))
        ids_list.append(torch.where(ids > 0, ids + offset, ids))
        offset += int(count)
    ids_t = torch.cat(ids_list) if ids_list else torch.zeros(0, dtype=torch.int64)
    return _Regions(ids=ids_t, sizes=torch.bincount(ids_t, minlength=offset + 1), count=offset)


def _pixel_inputs(maps: ArrayLike, masks: ArrayLike, metric: str) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int, int]]:
    """Flattened, checked scores and boolean labels of (N, H, W) maps and masks, and (N, H, W)."""
    maps_t = _as_cpu_tensor(maps, "maps")
    masks_t = _as_cpu_tensor(masks, "masks")
    if maps_t.ndim != 3:
        raise ValueError(f"{metric}: anomaly maps must have shape (N, H, W), got {tuple(maps_t.shape)}")
    if masks_t.shape != maps_t.shape:
        raise ValueError(
            f"{metric}: masks of shape {tuple(masks_t.shape)} do not match anomaly maps of shape {tuple(maps_t.shape)}"
        )
    scores = _check_finite(_as_float(maps_t, "maps").reshape(-1), f"{metric}: anomaly maps")
    labels = _as_binary(masks_t, f"{metric}: masks").reshape(-1)
    num_pos = int(torch.count_nonzero(labels))  # .sum() of bool would make an int64 copy
    n, h, w = maps_t.shape
    if num_pos == 0:
        raise ValueError(
            f"{metric} is undefined: none of the {labels.numel()} pixels of the {n} masks "
            f"({h}x{w}) is anomalous, so there is no anomalous region or positive pixel"
        )
    if num_pos == labels.numel():
        raise ValueError(
            f"{metric} is undefined: all {labels.numel()} pixels of the {n} masks are anomalous, "
            "so there is no normal pixel and no false positive rate"
        )
    return scores, labels, (n, h, w)


def _as_cpu_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, (list, tuple)):
        return torch.as_tensor(np.asarray(x))
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def _as_float(x: torch.Tensor, name: str) -> torch.Tensor:
    """float32 stays float32 and float64 stays float64; half precision and integers widen exactly."""
    if x.dtype in (torch.float32, torch.float64):
        return x.contiguous()
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{name} must hold real scores, got dtype {x.dtype}")
    return x.double()


def _as_binary(x: torch.Tensor, name: str) -> torch.Tensor:
    """Boolean labels; integer or float labels must be exactly 0 or 1."""
    if x.dtype == torch.bool:
        return x.contiguous()
    if x.is_complex():
        raise ValueError(f"{name} must be binary (0/1 or bool), got dtype {x.dtype}")
    if x.numel() and not bool(((x == 0) | (x == 1)).all()):
        bad = x[(x != 0) & (x != 1)].unique()[:5].tolist()
        raise ValueError(
            f"{name} must be binary (0/1 or bool), found values {bad}; binarise masks at > 0.5 of "
            "their max after a nearest-neighbour resize"
        )
    return (x != 0).contiguous()


def _check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    # aminmax propagates NaN and allocates nothing of the input's size (isfinite would)
    if x.numel() and not all(math.isfinite(v) for v in torch.aminmax(x)):
        num_nan = int(torch.isnan(x).sum())
        num_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{name} contain {num_nan} NaN and {num_inf} infinite values; scores must be finite")
    return x


def _check_two_classes(labels: torch.Tensor, metric: str, what: str) -> None:
    num_pos = int(torch.count_nonzero(labels))
    if num_pos == 0:
        raise ValueError(f"{metric} is undefined: all {labels.numel()} {what} are labelled normal")
    if num_pos == labels.numel():
        raise ValueError(f"{metric} is undefined: all {labels.numel()} {what} are labelled anomalous")


def _check_fpr_limit(fpr_limit: float) -> None:
    if not (0.0 < fpr_limit <= 1.0) or math.isnan(fpr_limit):
        raise ValueError(f"fpr_limit must lie in (0, 1], got {fpr_limit}")


def _downsample(curves: tuple[np.ndarray, ...], max_points: int | None) -> tuple[np.ndarray, ...]:
    """Keep `max_points` points evenly spaced by index (first and last kept); plotting only."""
    n = len(curves[0])
    if max_points is None or n <= max_points:
        return curves
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2 to keep both ends of the curve, got {max_points}")
    keep = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    return tuple(c[keep] for c in curves)
