"""What a job's predictions look like, made on the worker as a small JobVisuals the driver can
write: ROC and per-region-overlap curve points, prediction panels (PNG bytes) and an animated GIF.

Reviewers trust a heatmap more than a number; the pictures travel in `JobResult.visuals` (tens of
KB), so they never stay on a worker's disk. The curves are those of `memseg.metrics.evaluate`:
the same sort of the pooled pixels that gave the metrics.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from memseg.data.types import CategoryData
from memseg.heatmap import overlay
from memseg.metrics import Curve, Evaluation
from memseg.result import F1_THRESHOLD, CurvePoints, JobVisuals, ShownImage, VisualPanel

MAX_CURVE_POINTS = 200  # what the job asks `evaluate` for: plenty for a plot
ROLE_FALSE_POSITIVE = "worst false positive"  # the normal test image with the highest score
ROLE_FALSE_NEGATIVE = "worst false negative"  # the anomalous test image with the lowest score
ROLE_TYPICAL = "typical"  # the median-scoring anomalous image of a defect type
GIF_FRAME_MS = 900
_GAP = 2  # pixels between tiles
_STRIP = 14  # height of a text strip above or below the tiles
_BACKGROUND = (24, 24, 24)
_TEXT = (235, 235, 235)


def job_visuals(
    data: CategoryData,
    maps: torch.Tensor | np.ndarray,
    scores: torch.Tensor | np.ndarray,
    evaluation: Evaluation,
    max_panels: int = 6,
    gif_frames: int = 12,
    thumb_size: int = 128,
) -> JobVisuals:
    """The pictures and curves of one job's test set.

    maps: (N, S, S) anomaly probabilities of `data.test_images`; scores: (N,) image scores;
    evaluation: their `memseg.metrics.evaluate` (thinned to MAX_CURVE_POINTS by the caller).
    Without ground-truth masks there is no ground-truth or thresholded-mask column and no pixel
    ROC or PRO curve.
    """
    maps_t = torch.as_tensor(maps).detach().cpu().float()
    scores_t = torch.as_tensor(scores).detach().cpu().double().reshape(-1)
    labels = data.test_labels.cpu().reshape(-1)
    n = len(data.test_images)
    if maps_t.shape != (n, *data.test_images.shape[-2:]) or scores_t.numel() != n or labels.numel() != n:
        raise ValueError(
            f"job_visuals: {n} test images of {tuple(data.test_images.shape[-2:])} need maps (N, S, S) and N scores; "
            f"got maps {tuple(maps_t.shape)}, {scores_t.numel()} scores, {labels.numel()} labels"
        )
    if max_panels < 0 or gif_frames < 0 or thumb_size < 8:
        raise ValueError(
            f"job_visuals: max_panels and gif_frames must be >= 0 and thumb_size >= 8, got "
            f"{max_panels}, {gif_frames}, {thumb_size}"
        )
    masks = data.test_masks.cpu().bool() if data.test_masks is not None else None
    threshold = evaluation.metrics.get(F1_THRESHOLD, math.nan) if masks is not None else math.nan
    tiles = _Tiles(
        data,
        maps_t,
        masks,
        None if not math.isfinite(threshold) else float(threshold),
        min(thumb_size, data.test_images.shape[-1]),
    )
    score_list = scores_t.tolist()

    panels = []
    for index, role in choose_panels(labels.tolist(), data.test_defect_types, score_list, max_panels):
        caption = f"{role} · {_short(data.test_paths[index])} · score {score_list[index]:.3f}"
        png = _png(_compose(tiles.panel(index), tiles.columns, caption))
        panels.append(VisualPanel(role, _shown(data, index, score_list[index]), png))
    frames = choose_gif_frames(data.test_defect_types, gif_frames)
    return JobVisuals(
        threshold=tiles.threshold,
        thumb_size=tiles.size,
        columns=tiles.columns,
        image_roc=_points(evaluation.image_roc),
        pixel_roc=_points(evaluation.pixel_roc) if masks is not None and evaluation.pixel_roc else None,
        pro=_points(evaluation.pro) if masks is not None and evaluation.pro else None,
        panels=tuple(panels),
        gif=_gif_of(tiles, data, score_list, frames),
        gif_items=tuple(_shown(data, i, score_list[i]) for i in frames),
    )


def _points(curve: Curve) -> CurvePoints:
    return CurvePoints(tuple(curve.x.tolist()), tuple(curve.y.tolist()))


def _gif_of(tiles: _Tiles, data: CategoryData, scores: list[float], frames: list[int]) -> bytes | None:
    """The animated GIF of `frames` (input and heatmap side by side), None without frames."""
    if not frames:
        return None
    pictures = [
        _compose(
            tiles.pair(i), ("input", "heatmap"), f"{data.test_defect_types[i]} · score {scores[i]:.3f} · {k + 1}/{len(frames)}"
        )
        for k, i in enumerate(frames)
    ]
    return _gif(pictures)


def choose_panels(
    labels: Sequence[int], defect_types: Sequence[str], scores: Sequence[float], max_panels: int
) -> list[tuple[int, str]]:
    """(test index, role) of the images to show: the worst false positive (normal image with the
    highest score), the worst false negative (anomalous image with the lowest score), then the
    median-scoring anomalous image of each defect type in turn (then its neighbours by score), so
    the failures are always there and the rest shows what a typical detection looks like."""
    normal = [i for i, label in enumerate(labels) if label == 0]
    anomalous = [i for i, label in enumerate(labels) if label == 1]
    chosen: list[tuple[int, str]] = []
    if normal:
        chosen.append((max(normal, key=lambda i: (scores[i], -i)), ROLE_FALSE_POSITIVE))
    if anomalous:
        chosen.append((min(anomalous, key=lambda i: (scores[i], i)), ROLE_FALSE_NEGATIVE))
    by_type: dict[str, list[int]] = {}
    for i in anomalous:
        by_type.setdefault(defect_types[i], []).append(i)
    queues = []
    for kind in sorted(by_type):
        ranked = sorted(by_type[kind], key=lambda i: (scores[i], i))
        middle = (len(ranked) - 1) // 2
        outward = sorted(range(len(ranked)), key=lambda p: (abs(p - middle), p))  # median, then neighbours
        queues.append((kind, [ranked[p] for p in outward]))
    taken = {i for i, _ in chosen}
    while queues and len(chosen) < max_panels:
        for kind, queue in queues:
            while queue and queue[0] in taken:
                queue.pop(0)
            if queue and len(chosen) < max_panels:
                index = queue.pop(0)
                chosen.append((index, f"{ROLE_TYPICAL} {kind}"))
                taken.add(index)
        queues = [(k, q) for k, q in queues if q]
    return chosen[:max_panels]


def choose_gif_frames(defect_types: Sequence[str], count: int) -> list[int]:
    """Up to `count` test indices taken in turn from each defect type ("good" first, then by
    name), in test order within a type, so every type appears before any repeats."""
    by_type: dict[str, list[int]] = {}
    for i, kind in enumerate(defect_types):
        by_type.setdefault(kind, []).append(i)
    order = sorted(by_type, key=lambda k: (k != "good", k))
    frames: list[int] = []
    depth = 0
    while len(frames) < count and any(depth < len(by_type[k]) for k in order):
        frames += [by_type[k][depth] for k in order if depth < len(by_type[k])]
        depth += 1
    return frames[:count]


# --------------------------------------------------------------------------------------------
# Tiles and pictures
# --------------------------------------------------------------------------------------------


class _Tiles:
    """Thumbnails of one test image: the input, the ground truth, the heatmap overlay and the
    mask predicted at the F1-max threshold, each (3, s, s) uint8. Masks are shrunk by area, so a
    defect smaller than a thumbnail pixel still shows as grey instead of vanishing."""

    def __init__(
        self, data: CategoryData, maps: torch.Tensor, masks: torch.Tensor | None, threshold: float | None, size: int
    ) -> None:
        self.data, self.maps, self.masks, self.threshold, self.size = data, maps, masks, threshold, size
        columns = ["input"] + (["ground truth"] if masks is not None else []) + ["heatmap"]
        if threshold is not None:
            columns.append(f"mask (score >= {threshold:.3f})")
        self.columns = tuple(columns)

    def _shrink(self, picture: torch.Tensor) -> torch.Tensor:
        """(C, S, S) float -> (C, s, s) float by area averaging (exact when s divides S)."""
        if picture.shape[-1] == self.size:
            return picture
        return F.interpolate(picture[None], size=(self.size, self.size), mode="area")[0]

    def image(self, index: int) -> torch.Tensor:
        return self._shrink(self.data.test_images[index].float()).round().to(torch.uint8)

    def overlay(self, index: int, image: torch.Tensor) -> torch.Tensor:
        """The heatmap blended over `image`, the thumbnail of test image `index`."""
        return overlay(image, self._shrink(self.maps[index][None])[0])

    def pair(self, index: int) -> list[torch.Tensor]:
        image = self.image(index)
        return [image, self.overlay(index, image)]

    def _grey(self, mask: torch.Tensor) -> torch.Tensor:
        return (self._shrink(mask.float()[None]) * 255).round().to(torch.uint8).expand(3, -1, -1)

    def panel(self, index: int) -> list[torch.Tensor]:
        image = self.image(index)
        tiles = [image]
        if self.masks is not None:
            tiles.append(self._grey(self.masks[index]))
        tiles.append(self.overlay(index, image))
        if self.threshold is not None:
            tiles.append(self._grey(self.maps[index] >= self.threshold))
        return tiles


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=10)


def _compose(tiles: list[torch.Tensor], titles: Sequence[str], caption: str) -> Image.Image:
    """Tiles side by side, column titles above, a caption below, on a dark background."""
    size = tiles[0].shape[-1]
    width = len(tiles) * size + (len(tiles) - 1) * _GAP
    picture = Image.new("RGB", (width, size + 2 * _STRIP), _BACKGROUND)
    draw = ImageDraw.Draw(picture)
    font = _font()
    for k, (tile, title) in enumerate(zip(tiles, titles)):
        x = k * (size + _GAP)
        picture.paste(Image.fromarray(tile.permute(1, 2, 0).numpy()), (x, _STRIP))
        draw.text((x + 2, 1), _fit(draw, title, size - 4, font), fill=_TEXT, font=font)
    draw.text((2, size + _STRIP + 1), _fit(draw, caption, width - 4, font), fill=_TEXT, font=font)
    return picture


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font: Any) -> str:
    """`text`, cut with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _png(picture: Image.Image) -> bytes:
    """A 256-colour PNG: a third of the size of an RGB one. Max-coverage keeps every colour within a
    few levels on real images (median cut, though smaller on average, lets some drift by 100)."""
    buffer = io.BytesIO()
    picture.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _gif(pictures: list[Image.Image]) -> bytes:
    """An endlessly looping GIF; each frame gets its own 48-colour palette. Sensor noise is what LZW
    cannot compress, and fewer colours flatten it: 48 keeps 12 frames at 128 px near 70 KB with
    little banding (64 colours: about 90 KB, 256: about 200 KB)."""
    frames = [p.quantize(colors=48, method=Image.Quantize.MAXCOVERAGE) for p in pictures]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=GIF_FRAME_MS, loop=0, optimize=True)
    return buffer.getvalue()


def _short(path: str) -> str:
    """The last two parts of a test image path (defect type / file), which identify it in a category."""
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def _shown(data: CategoryData, index: int, score: float) -> ShownImage:
    return ShownImage(index, data.test_paths[index], data.test_defect_types[index], int(data.test_labels[index]), score)
