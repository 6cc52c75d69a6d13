"""Peak memory of one run, measured per run rather than over the process's lifetime.

A grid runs many runs in one process, so ``ru_maxrss`` (the lifetime maximum) would charge every run
with the largest one before it. On Linux the kernel's resident-set high-water mark (``VmHWM``) is reset
by writing ``5`` to ``/proc/self/clear_refs``; read after the run, it is that run's peak resident
memory (everything resident, including what was loaded before the run started). On CUDA the peak is
``torch.cuda.max_memory_allocated`` after a reset. Where neither can be reset the value is unknown
(``None``), never the lifetime maximum passed off as the run's.
"""

from __future__ import annotations

from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), None where there is no /proc."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_rss_peak() -> bool:
    """Reset the resident-set high-water mark; False where the kernel does not allow it."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return status_kb("VmHWM") is not None


class RunPeakMemory:
    """``with RunPeakMemory(device) as peak: ...`` then ``peak.mb``: the run's peak in MiB, or None.

    On CPU it is the process's peak resident set during the block; on CUDA the peak memory allocated
    by torch on that device during the block."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.mb: float | None = None
        self._armed = False

    def __enter__(self) -> RunPeakMemory:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(torch.device(self.device))
            self._armed = True
        else:
            self._armed = reset_rss_peak()
        return self

    def __exit__(self, *exc) -> None:
        if not self._armed:
            return
        if self.device.startswith("cuda"):
            import torch

            self.mb = torch.cuda.max_memory_allocated(torch.device(self.device)) / 2**20
        else:
            kb = status_kb("VmHWM")
            self.mb = None if kb is None else kb / 1024.0
