"""Where a result came from: versions, device, git commit, time — recorded in every row."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from functools import lru_cache


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the working directory's repository, '' when unknown (not a checkout, no git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu {platform.machine()} ({torch.get_num_threads()} threads, {os.cpu_count()} cores)"


@lru_cache(maxsize=4)
def provenance(device: str) -> dict[str, str]:
    import timm
    import torch

    import liftbench

    return {
        "liftbench_version": liftbench.__version__,
        "torch_version": torch.__version__,
        "timm_version": timm.__version__,
        "device": device_name(device),
        "git_commit": git_commit(),
    }


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
