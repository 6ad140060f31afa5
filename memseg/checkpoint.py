"""Mid-training checkpoints of one job: the model, optimizer, scheduler and RNG state after a step,
as one safetensors blob (tensors, plus the few scalars as JSON in its metadata; nothing pickled).

`memseg.job.run` hands one to its `on_checkpoint` callback every N steps and takes one back as
`resume`; a resumed run continues bit-identically on the CPU. Where the blob is kept is the
caller's business (the harness's driver writes it to its results folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _load_safetensors
from safetensors.torch import save as _save_safetensors

from memseg import revision as code_revision

FORMAT = "memseg-train-checkpoint/1"
_META_KEY = "memseg_checkpoint"
# Buffers rebuilt exactly by `MemSeg.fill_memory` from the same held-out images: never saved.
_NOT_SAVED_PREFIX = "memory_"


@dataclass(frozen=True)
class TrainCheckpoint:
    """The training state after `step` completed steps. `tensors` holds the model's state (minus
    the memory bank), the optimizer's per-parameter state and the RNG states; `meta` the JSON
    scalars: optimizer param groups, scheduler state, train seconds so far. `revision`: the revision
    of the code that wrote it (memseg.revision; a checkpoint without one reads as LEGACY_REVISION);
    another revision's checkpoint is never resumed."""

    job_id: str
    step: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    revision: int = field(default_factory=lambda: code_revision.REVISION)

    def to_bytes(self) -> bytes:
        header = {"format": FORMAT, "job_id": self.job_id, "step": self.step, "revision": self.revision, **self.meta}
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.tensors.items()}
        return _save_safetensors(tensors, metadata={_META_KEY: json.dumps(header)})

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainCheckpoint:
        """Parse a blob made by `to_bytes`; ValueError when it is not one."""
        try:
            tensors = _load_safetensors(data)
            header = json.loads(_read_metadata(data)[_META_KEY])
        except (SafetensorError, ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
            raise ValueError(f"not a memseg training checkpoint ({type(err).__name__}: {err})") from None
        if header.pop("format", None) != FORMAT:
            raise ValueError(f"not a memseg training checkpoint of format {FORMAT}")
        revision = int(header.pop("revision", code_revision.LEGACY_REVISION))
        return cls(job_id=header.pop("job_id"), step=int(header.pop("step")), tensors=tensors, meta=header, revision=revision)


def _read_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors blob (the JSON header after an 8-byte length)."""
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]).get("__metadata__") or {}


def capture(
    job_id: str,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generators: dict[str, torch.Generator],
    device: torch.device,
    train_s: float,
    curves: dict[str, object] | None = None,
) -> TrainCheckpoint:
    """Everything a training loop needs to go on from `step` as if it had never stopped, and the
    training curve so far (memseg.curves.CurveRecorder.to_json), so that a resumed job's curve
    starts at step 0."""
    tensors: dict[str, torch.Tensor] = {
        f"model.{k}": v.clone() for k, v in model.state_dict().items() if not k.startswith(_NOT_SAVED_PREFIX)
    }
    optim = optimizer.state_dict()
    for index, state in optim["state"].items():
        for name, value in state.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {index}.{name} is a {type(value).__name__}, expected a tensor")
            tensors[f"optim.{index}.{name}"] = value.clone()
    tensors["rng.torch"] = torch.get_rng_state()
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    for name, generator in generators.items():
        tensors[f"rng.gen.{name}"] = generator.get_state()
    meta = {
        "optimizer_param_groups": optim["param_groups"],
        "scheduler": scheduler.state_dict(),
        "train_s": train_s,
        **({"curves": curves} if curves is not None else {}),
    }
    return TrainCheckpoint(job_id, step, tensors, json.loads(json.dumps(meta, default=_scalar)))


def _scalar(value: object) -> float:
    """A one-element tensor in the JSON part as its number: a captured training step keeps its
    learning rate in a device tensor (memseg.train_step), which a restore turns back into one."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    raise TypeError(f"checkpoint metadata holds a {type(value).__name__}, expected JSON numbers, strings and lists")


def restore(
    checkpoint: TrainCheckpoint,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generators: dict[str, torch.Generator],
    device: torch.device,
) -> None:
    """Put the state of `checkpoint` back into freshly built training objects (same config)."""
    tensors = checkpoint.tensors
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(model_state, strict=False)
    missing = [k for k in missing if not k.startswith(_NOT_SAVED_PREFIX)]
    if missing or unexpected:
        raise ValueError(
            f"checkpoint of job {checkpoint.job_id} does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": checkpoint.meta["optimizer_param_groups"]})
    scheduler.load_state_dict(checkpoint.meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    for name, generator in generators.items():
        generator.set_state(tensors[f"rng.gen.{name}"])
