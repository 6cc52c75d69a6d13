"""Timing, peak memory and the device's matmul peak, measured the same way for every configuration.

Latency is the median over repeats after warm-up, with the interquartile range as its spread, and a
device synchronise around every call on GPU (kernels are asynchronous; timing without it measures the
launch). Memory is measured in a separate call from timing, so a sampling thread never steals a core
from the timed calls. On GPU it is ``torch.cuda.max_memory_allocated`` above the allocation before
the call. On CPU it is growth of the process's resident set: the kernel's high-water mark
(``VmHWM``) is reset by writing ``5`` to ``/proc/self/clear_refs`` where permitted, otherwise a thread
samples ``VmRSS``. glibc keeps freed memory and raises its mmap threshold dynamically, which would
make a second call look free: while measuring memory we trim the heap and set the threshold to 1 MiB
so large tensors are mapped fresh (and counted); afterwards it is fixed at 32 MiB, glibc's own
dynamic ceiling, so the timed calls do not pay a page fault for every mid-sized tensor. The achieved fraction of peak needs a peak measured on the same
device in the same run: the best of several large square matmuls.
"""

from __future__ import annotations

import ctypes
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from liftbench.run.memory import STATUS as _STATUS
from liftbench.run.memory import reset_rss_peak as _reset_hwm
from liftbench.run.memory import status_kb as _status_kb

M_MMAP_THRESHOLD = -3
_MEASURE_THRESHOLD = 1 << 20
_TIMING_THRESHOLD = 32 << 20


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


@dataclass(frozen=True)
class Timing:
    """Milliseconds per call over ``repeats`` timed calls."""

    median_ms: float
    iqr_ms: float
    min_ms: float
    max_ms: float
    repeats: int


def time_call(fn: Callable[[], Any], device: str, *, warmup: int = 2, repeats: int = 5) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls (allocator, kernel selection, caches), then ``repeats``."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append((time.perf_counter() - start) * 1000.0)
    if len(samples) >= 2:
        q = statistics.quantiles(samples, n=4, method="inclusive")
        iqr = q[2] - q[0]
    else:
        iqr = 0.0
    return Timing(statistics.median(samples), iqr, min(samples), max(samples), len(samples))


@lru_cache(maxsize=1)
def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None  # glibc only


def _set_mmap_threshold(nbytes: int, trim: bool = False) -> None:
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, nbytes)
        if trim:
            libc.malloc_trim(0)


class _RssSampler(threading.Thread):
    """Fallback when the high-water mark cannot be reset: the largest ``VmRSS`` seen every ~1 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = _status_kb("VmRSS") or 0
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb("VmRSS") or 0)
            time.sleep(0.001)

    def stop(self) -> int:
        self._stop.set()
        self.join()
        return max(self.peak_kb, _status_kb("VmRSS") or 0)


def peak_memory_mb(fn: Callable[[], Any], device: str) -> float:
    """Memory ``fn()`` needs above what was allocated before it: MiB (CPU: RSS growth; GPU: allocator)."""
    if device.startswith("cuda"):
        dev = torch.device(device)
        synchronize(device)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        fn()
        synchronize(device)
        return (torch.cuda.max_memory_allocated(dev) - base) / 2**20
    if _STATUS.exists():
        _set_mmap_threshold(_MEASURE_THRESHOLD, trim=True)
        try:
            base = _status_kb("VmRSS") or 0
            if _reset_hwm():
                fn()
                peak = _status_kb("VmHWM") or 0
            else:
                sampler = _RssSampler()
                sampler.start()
                try:
                    fn()
                finally:
                    peak = sampler.stop()
        finally:
            _set_mmap_threshold(_TIMING_THRESHOLD)
        return max(0, peak - base) / 1024.0
    import resource  # no /proc (macOS): the lifetime maximum, an upper bound

    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def matmul_peak_gflops(device: str, dtype: torch.dtype = torch.float32, *, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n × n`` matmul on ``device`` (``2·n³`` FLOPs each): the achievable peak."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    timing = time_call(lambda: torch.mm(a, b, out=out), device, warmup=2, repeats=repeats)
    return 2.0 * n**3 / (timing.min_ms / 1000.0) / 1e9


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/CPU out-of-memory errors (``torch.OutOfMemoryError`` or a RuntimeError saying so)."""
    oom = getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text or "failed to allocate" in text)
