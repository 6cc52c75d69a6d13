"""Frozen features of a dataset through a lifted backbone, computed once and cached on disk.

A linear probe's backbone never changes, so its features are a pure function of (dataset, size,
dataset options, backbone, weights, strategy, schedule, backbone mode, dtype). They are stored under
that key with an atomic rename, so a partial file is never read; every later seed or run reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import torch

from liftbench.api import extract
from liftbench.datasets.volumes import SPLITS, VolumeDataset
from liftbench.lifting.base import Lifted
from liftbench.run.results import replace_atomic

CACHE_VERSION = 1
_REFRESHED: set[str] = set()  # cache keys this process recomputed under --force: its later seeds read them


def stale_ok(key: str, refresh: bool) -> bool:
    """Whether a cache entry under ``key`` may be read: always, unless ``--force`` asked for fresh features and
    this process has not recomputed that entry yet (the first run of a group does; its other seeds reuse it)."""
    return not refresh or key in _REFRESHED


def refreshed(key: str) -> None:
    """Note that this process wrote ``key`` afresh."""
    _REFRESHED.add(key)


def start_refreshing() -> None:
    """A new command: under ``--force`` every entry it reads is recomputed once again."""
    _REFRESHED.clear()


def default_cache_dir() -> Path:
    """``$LIFTBENCH_CACHE`` or ``~/.cache/liftbench``."""
    return Path(os.environ.get("LIFTBENCH_CACHE", Path.home() / ".cache" / "liftbench"))


def cache_key(parts: dict) -> str:
    payload = json.dumps({"v": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def cached_features(cache_dir: Path, parts: dict, lifted: Lifted, dataset: VolumeDataset, mean, std, *, batch_size: int, device: str, dtype: str, log=print, refresh: bool = False):
    """Features of every split (``{split: (N, D, E) or (N, E)}``) and volumes/s, from cache if present.

    ``parts`` must name the data by its content (``parts["data"]``: :func:`liftbench.run.inputs.data_fingerprint`)
    and the weights by theirs; ``refresh`` (``--force``) extracts afresh once per process.
    Returns ``(features, volumes_per_second, hit)``; volumes/s is the one measured when the cache was
    written, so cost figures stay comparable between fresh and cached runs.
    """
    key = cache_key(parts)
    path = Path(cache_dir) / "features" / f"{key}.pt"
    if path.exists() and stale_ok(key, refresh):
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            log(f"feature cache hit {path.name} ({', '.join(f'{s}: {tuple(stored[s].shape)}' for s in SPLITS)})")
            return {s: stored[s] for s in SPLITS}, float(stored["volumes_per_second"]), True
        except Exception as exc:  # unreadable cache entry: recompute it
            log(f"feature cache entry {path.name} unreadable ({exc}); recomputing")
    start = time.perf_counter()
    features = {s: extract(lifted, dataset.splits[s].volumes, mean, std, batch_size, device, dtype) for s in SPLITS}
    total = sum(len(dataset.splits[s]) for s in SPLITS)
    vps = total / max(time.perf_counter() - start, 1e-9)
    payload = {**features, "volumes_per_second": torch.tensor(vps), "parts": json.dumps(parts, sort_keys=True, default=str)}
    replace_atomic(path, lambda tmp: torch.save(payload, tmp))
    refreshed(key)
    log(f"feature cache miss: extracted {total} volumes at {vps:.2f} volumes/s -> {path.name}")
    return features, vps, False
