"""The ablations: which parts of MemSeg a job switches off, each by name (`full` has everything on).
A job names one (JobConfig.ablation); the model and the simulator are built from its switches
(memseg.build), and a sweep expands over several (harness.sweep).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from memseg.names import check_names


@dataclass(frozen=True)
class Ablation:
    """Which parts of MemSeg are switched on. `full` has everything on; each ablation turns off
    exactly the part its name says."""

    name: str
    use_memory: bool = True
    use_coord_attention: bool = True
    use_spatial_attention: bool = True
    use_msff: bool = True
    texture_source: bool = True
    structure_source: bool = True
    foreground_mask: bool = True
    scaled: bool = True  # DI and features multiplied by the category's scales (memseg.categories)
    joint_memory: bool = False  # one memory item for all three levels instead of one per level
    segment_encoder: bool = True  # the official second encoder, its conv1-layer3 BNs in train mode when training


ABLATIONS: dict[str, Ablation] = {
    a.name: a
    for a in (
        Ablation("full"),
        # No memory bank: DI = 0, and spatial attention (computed from DI) is off with it.
        Ablation("no_memory", use_memory=False, use_spatial_attention=False),
        Ablation("no_coord_attention", use_coord_attention=False),
        Ablation("no_spatial_attention", use_spatial_attention=False),
        Ablation("no_msff", use_msff=False),
        Ablation("texture_only", structure_source=False),
        Ablation("structure_only", texture_source=False),
        Ablation("no_foreground_mask", foreground_mask=False),
        # What the official network (revision 2) changed, so a sweep can measure it.
        Ablation("unscaled", scaled=False),  # DI and feature scales 1 (the first network's inputs, before revision 2)
        Ablation("joint_memory", joint_memory=True),  # one item chosen jointly over the levels
        # Revision 3: one encoder whose conv1-layer3 always run in eval (revision 2's network; exactly
        # its outputs in eval and in training), against the official two encoders of `full`.
        Ablation("frozen_bn", segment_encoder=False),
    )
}


def check_ablations(names: Iterable[str], also_valid: Sequence[str] = ()) -> tuple[str, ...]:
    return check_names("ablations", names, ABLATIONS, also_valid)


def get_ablation(name: str) -> Ablation:
    """The ablation called `name`, or an UnknownNameError that lists the valid names."""
    return ABLATIONS[check_ablations([name])[0]]
