"""Prediction panels, GIF and curves of one job: the failures are shown, the pictures decode and
show what they say, the curves are the metrics' curves, and data without masks still works."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from memseg.data.types import CategoryData
from memseg.metrics import evaluate, image_scores
from memseg.visuals import (
    MAX_CURVE_POINTS,
    ROLE_FALSE_NEGATIVE,
    ROLE_FALSE_POSITIVE,
    choose_gif_frames,
    choose_panels,
    job_visuals,
)

STRIP, GAP = 14, 2  # memseg.visuals layout: text strips above and below the tiles, gap between


def make_job(
    size: int = 64,
    good: int = 4,
    types: tuple[str, ...] = ("crack", "hole"),
    per_type: int = 2,
    with_masks: bool = True,
    seed: int = 0,
    category: str = "bottle",
):
    """A category's test set with square defects, and maps that find them imperfectly:
    (CategoryData, maps, scores, evaluation), evaluated as the job does. The harness's report tests
    use it too."""
    g = torch.Generator().manual_seed(seed)
    kinds = ("good",) * good + tuple(t for t in types for _ in range(per_type))
    n = len(kinds)
    images = (F.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=(size, size), mode="bilinear") * 255).to(torch.uint8)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i, kind in enumerate(kinds):
        if kind != "good":
            y, x = torch.randint(0, size - size // 4, (2,), generator=g).tolist()
            masks[i, y : y + size // 4, x : x + size // 4] = True
    noise = F.avg_pool2d(torch.rand(n, 1, size, size, generator=g), 5, 1, 2)[:, 0]
    maps = (0.6 * masks.float() + 0.5 * noise).clamp(0, 1)
    labels = torch.tensor([int(k != "good") for k in kinds])
    scores = image_scores(maps)
    evaluation = evaluate(scores, labels, maps, masks if with_masks else None, max_curve_points=MAX_CURVE_POINTS)
    data = CategoryData(
        category=category,
        train_images=images[:1],
        test_images=images,
        test_labels=labels,
        test_masks=masks if with_masks else None,
        test_paths=tuple(f"{category}/test/{k}/{i:03d}.png" for i, k in enumerate(kinds)),
        test_defect_types=kinds,
    )
    return data, maps, scores, evaluation


def decode(data: bytes, kind: str) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    assert picture.format == kind
    picture.load()
    return picture


def tile(picture: Image.Image, column: int, size: int) -> np.ndarray:
    """Column `column` of a panel as (size, size, 3) uint8."""
    rgb = np.asarray(picture.convert("RGB"))
    x = column * (size + GAP)
    return rgb[STRIP : STRIP + size, x : x + size]


def test_panels_show_the_worst_false_positive_and_negative_first_then_every_defect_type():
    labels = [0, 0, 0, 1, 1, 1, 1, 1, 1]
    kinds = ["good"] * 3 + ["crack"] * 3 + ["hole"] * 3
    scores = [0.1, 0.7, 0.3, 0.9, 0.2, 0.5, 0.8, 0.6, 0.95]
    chosen = choose_panels(labels, kinds, scores, max_panels=5)
    assert chosen[0] == (1, ROLE_FALSE_POSITIVE)  # normal, highest score
    assert chosen[1] == (4, ROLE_FALSE_NEGATIVE)  # anomalous, lowest score
    # then the median-scoring image of each defect type, taking turns
    assert chosen[2:] == [(5, "typical crack"), (6, "typical hole"), (3, "typical crack")]
    everything = choose_panels(labels, kinds, scores, max_panels=20)
    assert sorted(i for i, _ in everything) == [1, 3, 4, 5, 6, 7, 8]  # no repeats; one normal image


def test_gif_takes_every_defect_type_before_repeating_one():
    kinds = ["good"] * 3 + ["crack"] * 2 + ["hole"]
    assert choose_gif_frames(kinds, 4) == [0, 3, 5, 1]
    assert sorted(choose_gif_frames(kinds, 50)) == list(range(6))


def test_panels_decode_and_show_input_truth_heatmap_and_thresholded_mask():
    data, maps, scores, evaluation = make_job()
    metrics = evaluation.metrics
    visuals = job_visuals(data, maps, scores, evaluation, max_panels=4)
    assert visuals.threshold == metrics["pixel_f1_threshold"]
    assert list(visuals.columns[:3]) == ["input", "ground truth", "heatmap"] and "mask" in visuals.columns[3]
    assert [p.role for p in visuals.panels[:2]] == [ROLE_FALSE_POSITIVE, ROLE_FALSE_NEGATIVE]
    assert len(visuals.panels) == 4
    for panel in visuals.panels:
        picture = decode(panel.png, "PNG")
        assert picture.size == (4 * 64 + 3 * GAP, 64 + 2 * STRIP)
        i = panel.image.index
        assert panel.image.score == pytest.approx(float(scores[i]))
        truth = tile(picture, 1, 64).mean(axis=2) > 127
        predicted = tile(picture, 3, 64).mean(axis=2) > 127
        assert (truth == data.test_masks[i].numpy()).all()
        assert (predicted == (maps[i] >= metrics["pixel_f1_threshold"]).numpy()).all()
        # the input tile is this image (up to the 256-colour palette), far closer to it than to any other
        error = [np.abs(tile(picture, 0, 64).astype(int) - im.permute(1, 2, 0).numpy()).mean() for im in data.test_images]
        assert error[i] < 12 and error[i] < 0.5 * min(e for j, e in enumerate(error) if j != i)


def test_gif_is_animated_with_one_frame_per_chosen_image():
    data, maps, scores, evaluation = make_job()
    visuals = job_visuals(data, maps, scores, evaluation, gif_frames=5)
    assert visuals.gif is not None
    gif = decode(visuals.gif, "GIF")
    assert gif.n_frames == 5 == len(visuals.gif_items)
    assert gif.size == (2 * 64 + GAP, 64 + 2 * STRIP)
    assert {item.defect_type for item in visuals.gif_items} == {"good", "crack", "hole"}


def test_curves_are_the_metrics_curves():
    data, maps, scores, evaluation = make_job()
    metrics = evaluation.metrics
    visuals = job_visuals(data, maps, scores, evaluation)
    image = visuals.image_roc
    assert np.trapezoid(image.y, image.fpr) == pytest.approx(metrics["image_auroc"], abs=1e-9)  # not thinned
    pixel, pro = visuals.pixel_roc, visuals.pro
    assert pixel is not None and pro is not None
    assert len(pixel.fpr) <= MAX_CURVE_POINTS and len(pro.fpr) <= MAX_CURVE_POINTS
    assert np.trapezoid(pixel.y, pixel.fpr) == pytest.approx(metrics["pixel_auroc"], abs=0.01)
    for x, y in ((pixel.fpr, pixel.y), (pro.fpr, pro.y)):
        assert (x[0], y[0], x[-1], y[-1]) == (0.0, 0.0, 1.0, 1.0) and np.all(np.diff(x) >= 0)


def test_without_masks_there_is_no_truth_column_and_no_pixel_curve():
    data, maps, scores, evaluation = make_job(with_masks=False)
    visuals = job_visuals(data, maps, scores, evaluation)
    assert visuals.threshold is None and list(visuals.columns) == ["input", "heatmap"]
    assert visuals.pixel_roc is None and visuals.pro is None
    assert decode(visuals.panels[0].png, "PNG").size == (2 * 64 + GAP, 64 + 2 * STRIP)


def test_payload_is_small_at_128_px():
    data, maps, scores, evaluation = make_job(size=256, good=8, types=("a", "b", "c"), per_type=4)
    visuals = job_visuals(data, maps, scores, evaluation)
    size = len(pickle.dumps(visuals))
    print(f"visuals payload at 128 px: {size / 1024:.0f} KB")  # pytest -s shows the measured size
    assert decode(visuals.panels[0].png, "PNG").size[1] == 128 + 2 * STRIP
    assert visuals.gif is not None
    assert len(visuals.panels) == 6 and decode(visuals.gif, "GIF").n_frames == 12
    assert size < 250 * 1024


def test_bad_shapes_are_refused_with_the_shapes():
    data, maps, scores, evaluation = make_job()
    with pytest.raises(ValueError, match=r"maps \(8, 32, 32\)"):
        job_visuals(data, maps[:, :32, :32], scores, evaluation)
