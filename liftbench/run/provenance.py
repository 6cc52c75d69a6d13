"""Where a result came from: versions, device, liftbench's own source commit, time — recorded in every row.

The commit is read from the repository that holds liftbench's source (an editable install or a
checkout), not from whatever folder the command runs in: a study run from another project's folder
must not record that project's commit. ``git_dirty`` says whether that source had uncommitted
changes to tracked files, so a result from edited code is never passed off as the commit's.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parents[1]  # the liftbench package


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(SOURCE_DIR), *args], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@lru_cache(maxsize=1)
def source_revision() -> tuple[str, bool | None]:
    """(commit, dirty) of the git checkout holding liftbench's source; ('', None) for an installed
    package that is not in a checkout (its version alone then identifies it)."""
    top = _git("rev-parse", "--show-toplevel")
    if not top or not (Path(top) / "liftbench" / "__init__.py").resolve() == SOURCE_DIR / "__init__.py":
        return "", None
    commit = _git("rev-parse", "HEAD") or ""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu {platform.machine()} ({torch.get_num_threads()} threads, {os.cpu_count()} cores)"


@lru_cache(maxsize=4)
def provenance(device: str) -> dict[str, object]:
    import timm
    import torch

    from liftbench.version import __version__ as liftbench_version

    commit, dirty = source_revision()
    return {
        "liftbench_version": liftbench_version,
        "torch_version": torch.__version__,
        "timm_version": timm.__version__,
        "device": device_name(device),
        "git_commit": commit,
        "git_dirty": dirty,
    }


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
