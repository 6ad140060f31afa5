"""The in-memory form of one category's data, shared by every reader, and the error they raise.

Images are decoded once, resized to the job's size and kept as uint8 tensors, so training never
waits on disk or PIL (an MVTec category at 256 px is well under 1 GB).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from memseg.cli_errors import UserError
from memseg.names import UnknownNameError

# For the annotations only: this module stays free of torch, so that the command lines can name
# DataError (and answer a mistake with it) before torch is loaded (start-up time).
if TYPE_CHECKING:
    import torch


class DataError(UserError, ValueError):
    """A data set is missing, malformed or unreadable. `problems` lists every offending path with
    what was expected, so one run shows the user everything to fix. A UserError: both command
    lines answer it with one message and exit 2 (memseg.cli_errors)."""

    @classmethod
    def unknown(cls, err: UnknownNameError) -> DataError:
        """The data layer's form of an unknown name: the names as the summary, the valid ones listed."""
        where = f" ({err.where})" if err.where else ""
        return cls(f"unknown {err.what} {list(err.bad)}{where}", [f"valid {err.what}: {', '.join(err.valid)}"])


@dataclass(frozen=True)
class CategoryData:
    """One category, decoded.

    train_images: (N, 3, S, S) uint8, normal only.
    test_images:  (M, 3, S, S) uint8.
    test_labels:  (M,) int64, 1 = anomalous.
    test_masks:   (M, S, S) bool, or None when the data set has no masks (folder data without a
                  mask folder): then only image-level metrics are defined.
    test_masks_native: the same masks at each image's original size, (H_i, W_i) bool each (all
                  zeros for normal images), kept only when asked for (native-resolution
                  evaluation); None otherwise or when the data set has no masks.
    """

    category: str
    train_images: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    test_masks: torch.Tensor | None
    test_paths: tuple[str, ...]
    test_defect_types: tuple[str, ...]  # "good" for normal images
    train_paths: tuple[str, ...] = ()
    test_masks_native: tuple[torch.Tensor, ...] | None = None
    # (V, 3, S, S) uint8: the data set's own defect-free validation images (MVTec AD 2's
    # validation/good), never trained on; None when it has none.
    validation_images: torch.Tensor | None = None
    validation_paths: tuple[str, ...] = ()
    # (P, 3, S, S) uint8: test images without ground truth (MVTec AD 2's private test sets), decoded
    # only when asked; `private_items` their (split, path). Never scored.
    private_images: torch.Tensor | None = None
    private_items: tuple[tuple[str, str], ...] = ()
