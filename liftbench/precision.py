"""Which floating-point precision a run uses: ``--dtype fp32 | bf16 | auto`` (the default).

``auto`` picks bf16 autocast only where both hold:

* the device computes bf16 natively — a CUDA GPU that supports it, or a CPU with ``avx512_bf16`` or
  ``amx_bf16`` — so it is faster (elsewhere bf16 is emulated and slower);
* the backbone passed the fidelity gate: registered with ``bf16=True`` because bf16 features left its
  linear-probe results unchanged at the precision the leaderboard prints.

Otherwise it is fp32. The dtype actually used is what protocols see in ``ctx.options["dtype"]``, what
keys the feature cache, and what every result row records (``notes``), whatever the user typed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=8)
def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bf16 in hardware."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in CPU_BF16_FLAGS)


def resolve_dtype(requested: str, device: str, backbone_bf16: bool) -> str:
    """``fp32`` or ``bf16``: the user's explicit choice, or what ``auto`` picks for this device and backbone."""
    if requested != "auto":
        return requested
    return "bf16" if backbone_bf16 and native_bf16(device) else "fp32"


def autocast(device: str, dtype: str):
    """bf16 autocast on request (on CPU too, so the path is testable without a GPU)."""
    import torch

    if dtype == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return torch.autocast(device_type=torch.device(device).type, enabled=False)
