"""``liftbench bench``: what each lifting costs — time, memory, FLOPs and how well the device is used.

Accuracy says which lifting to use; this says whether it is affordable. :mod:`.flops` counts FLOPs
with PyTorch's counter (attention included on CPU too), :mod:`.measure` times calls and measures
memory and the matmul peak, :mod:`.sweep` runs the grid into Parquet rows (``kind="bench"``), and
:mod:`.report` renders the Markdown table and plots.

The names below are loaded on first use, so importing :mod:`.flops` alone (what ``run --dry-run`` counts
with) does not import the report's stack (the leaderboard, scipy, pandas).
"""

from __future__ import annotations

import importlib

# name -> the module of this package that defines it
_NAMES = {
    "count_flops": "flops",
    "register_cpu_attention_formulas": "flops",
    "markdown": "report",
    "plot": "report",
    "write_report": "report",
    "BenchSettings": "sweep",
    "run_sweep": "sweep",
}

__all__ = ["BenchSettings", "count_flops", "markdown", "plot", "register_cpu_attention_formulas", "run_sweep", "write_report"]


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_NAMES])
