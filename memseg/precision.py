"""The arithmetic a job computes in: the recipe's `precision` (a name) resolved for a device type
into what torch is told (an autocast dtype and the TF32 switches), and the one place that tells it.

The official MemSeg code has no autocast: it trains and tests in float32 under PyTorch's default
TF32 settings (cuDNN convolutions may use TF32 on Ampere and later GPUs, matmuls do not). That is
`fp32`, the paper and tootouch profiles' precision. MemSeg is sensitive to it: the memory module's
signal is the difference of two nearly equal feature maps, scaled by 100 (1000 for transistor),
and bf16 keeps 8 bits of mantissa, so a difference below about 0.4% of a feature is rounded away
before the scale, and rounding can change which memory item the argmin picks
(docs/faithfulness.md, "Precision").

The decision is a pure function of the recipe's name and the device type (`resolve_precision`), so
it is tested without a GPU; `computing_in` applies it for a block and restores what it changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# fp32: the official code's float32 (no autocast; PyTorch's default TF32 settings, set explicitly).
# tf32: float32 storage, TF32 for convolutions and matmuls on CUDA (the CPU has no TF32: float32).
# bf16: bf16 autocast on every device (the CPU supports it; slow where it has no bf16 units).
# auto: bf16 autocast on CUDA, float32 elsewhere: what every job computed before the precision was
#       a recipe field (its `amp: true`), and the CPU profiles' (smoke, tiny) precision.
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "auto")
OFFICIAL_PRECISION = "fp32"


@dataclass(frozen=True)
class ComputePrecision:
    """What a job's forward passes compute in on its device. `name` is what a result row records:
    fp32, tf32 or bf16 (never auto: that is resolved per device)."""

    name: str
    autocast_bf16: bool  # forward passes under torch.autocast(dtype=bfloat16)
    matmul_tf32: bool  # torch.backends.cuda.matmul.allow_tf32 (CUDA only)
    cudnn_tf32: bool  # torch.backends.cudnn.allow_tf32 (CUDA only)

    def describe(self) -> str:
        """One line for banners and docs."""
        return {
            "fp32": "float32, no autocast (the official code's; PyTorch's default TF32 settings)",
            "tf32": "float32 with TF32 convolutions and matmuls",
            "bf16": "bf16 autocast",
        }[self.name]


def describe_recipe(name: str) -> str:
    """What recipe precision `name` computes on a GPU and on the CPU, for a run's banner."""
    on_gpu, on_cpu = resolve_precision(name, "cuda"), resolve_precision(name, "cpu")
    if on_gpu.name == on_cpu.name:
        return f"{name}: {on_gpu.describe()}"
    return f"{name}: {on_gpu.describe()} on a GPU, {on_cpu.name} on the CPU"


def check_precision(name: str) -> str:
    """`name` if it is one of PRECISIONS, else a ValueError listing them."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; valid: {', '.join(PRECISIONS)}")
    return name


def resolve_precision(name: str, device_type: str) -> ComputePrecision:
    """The arithmetic recipe precision `name` gives on a device of type `device_type` ("cuda",
    "cpu", ...). TF32 exists on CUDA only; elsewhere tf32 computes float32."""
    check_precision(name)
    cuda = device_type == "cuda"
    if name == "auto":
        name = "bf16" if cuda else "fp32"
    if name == "tf32" and not cuda:
        name = "fp32"
    if name == "bf16":
        return ComputePrecision("bf16", autocast_bf16=True, matmul_tf32=False, cudnn_tf32=cuda)
    if name == "tf32":
        return ComputePrecision("tf32", autocast_bf16=False, matmul_tf32=True, cudnn_tf32=True)
    # PyTorch's defaults since 1.12, which the official code ran under: TF32 convolutions, float32 matmuls.
    return ComputePrecision("fp32", autocast_bf16=False, matmul_tf32=False, cudnn_tf32=cuda)


def autocast(precision: ComputePrecision, device_type: str, *, cache_enabled: bool = True) -> torch.autocast:
    """The autocast context of a forward pass (a no-op one when the precision has none). A captured
    CUDA graph needs `cache_enabled=False` (no casts kept from the capture)."""
    import torch  # start-up time: memseg.config imports this module, and the command lines must start without torch

    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision.autocast_bf16, cache_enabled=cache_enabled)


@contextlib.contextmanager
def computing_in(precision: ComputePrecision, device_type: str) -> Iterator[None]:
    """Set the TF32 switches for the block (they are process-wide in torch) and restore them after;
    forward passes inside still open their own `autocast`. Set explicitly, not left to whatever the
    process holds, so a job computes the same after any other code ran in its worker."""
    import torch  # start-up time, as in `autocast`

    matmul = torch.backends.cuda.matmul
    before = (matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if device_type == "cuda":
        matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = precision.matmul_tf32, precision.cudnn_tf32
    try:
        yield
    finally:
        matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
