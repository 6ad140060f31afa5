"""What `harness run` checks and says before Ray starts: the inputs a local run will read (data
layout, weights file, texture folder; cheap, nothing decoded), and what the numbers of the sweep
can and cannot mean (memseg.caveats). The full preflight (every image decoded, on every node)
stays with the driver (harness.preflight).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console

from harness.sweep import SweepSpec
from memseg.caveats import GENERATED_KINDS, RANDOM_INIT_REAL_DATA, random_init_on_real_data
from memseg.config import JobConfig
from memseg.input_checks import check_data, check_texture_dir, check_weights


def check_local_inputs(spec: SweepSpec, data: bool = True) -> None:
    """Raise a UserError (DataError included) for inputs that are missing here. Only for a cluster
    started on this machine: a remote cluster may see paths this machine does not. `data` False
    leaves the data to the driver's check (tests replace it with --data-check)."""
    if data and spec.dataset not in GENERATED_KINDS and spec.data_root is not None:
        check_data(spec.dataset, spec.data_root, spec.categories)
    for given in (spec.overrides, *spec.variants.values()):  # the sweep's recipe and each variant's
        check_weights(str(given.get("backbone_weights", "imagenet")))
        texture_dir = given.get("texture_dir")
        check_texture_dir(None if texture_dir is None else str(texture_dir))


def warn_caveats(errors: Console, configs: Sequence[JobConfig]) -> None:
    """The random-init warning (docs/design.md, 'What bad input gets'), once, when some job reads real data with a random-init backbone."""
    if any(random_init_on_real_data(c.dataset, c.backbone_weights) for c in configs):
        errors.print(f"[yellow]warning:[/] {RANDOM_INIT_REAL_DATA}", markup=True, highlight=False, soft_wrap=True)
