"""A run's inputs — its dataset and its weights — loaded once and identified by their content, never by a path.

A result means something only for the numbers it was computed from. So the run key and every feature cache
carry what the inputs *are*:

- the data: :func:`data_fingerprint`, a hash of every split's volumes, labels and masks (plus the task and the
  class count) of the dataset as its plugin returned it. Replacing ``organmnist3d_64.npz`` by another file, or
  pointing ``--data-root`` at another folder holding a file of the same name, gives another fingerprint, so the
  run is another run and its features are extracted afresh;
- the weights: :func:`weights_identity`, ``random:SEED`` for a seeded init (a pure function of the architecture
  and the seed), else ``sha256:<hex>`` of the file the weights come from — a ``--weights PATH`` checkpoint, the
  Hugging Face cache's file of timm's pretrained weights (its blob is named by its sha256), liftbench's shipped
  file. Overwriting a checkpoint at the same path makes another run. Only ``pretrained`` weights that are
  neither cached nor locatable (an online machine downloads them when the run starts) are named
  ``pretrained``; their rows still record the sha256 of the state dict the run used.

Both are computed when the plan is made, so a missing or unreadable file stops the command before any run.
A loaded dataset is kept in memory (the last one), so planning and the first runs share one load.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from liftbench.errors import MissingFileError

_memo: dict[str, tuple[Any, Any]] = {}


def remember(slot: str, key: Any, build: Callable[[], Any]) -> Any:
    """Keep one object per slot (dataset, backbone) across the runs of a grid (and the plan that made it)."""
    held = _memo.get(slot)
    if held is not None and held[0] == key:
        return held[1]
    _memo.pop(slot, None)
    value = build()
    _memo[slot] = (key, value)
    return value


def forget(slot: str) -> None:
    """Drop what ``slot`` holds: a new plan reads its data afresh (a file may have changed since the last one)."""
    _memo.pop(slot, None)


def dataset_options(entry, given: Mapping[str, Any]) -> dict[str, Any]:
    """What a dataset's loader is called with: the entry's own options, then the run's."""
    return {**entry.options, **given}


def load_dataset(entry, size: int, data_root: str | None, given: Mapping[str, Any]):
    """The dataset ``entry`` at ``size`` with the run's options (``given``), loaded once per grid and checked at
    the boundary (:func:`liftbench.checks.load_dataset`: a plugin's malformed return names the plugin)."""
    from liftbench.checks import load_dataset as load_checked

    options = dataset_options(entry, given)
    key = (entry.name, size, data_root, json.dumps(options, sort_keys=True, default=str))
    return remember("dataset", key, lambda: load_checked(entry, size=size, data_root=data_root, options=dict(given)))


def data_fingerprint(dataset) -> str:
    """A hash of what the dataset holds: task, class count, and each split's volumes, labels and masks (their
    dtypes, shapes and bytes). Cached on the dataset object: a grid's runs share it."""
    held = getattr(dataset, "_liftbench_fingerprint", None)
    if held:
        return held
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{dataset.task}|{dataset.num_classes}|".encode())
    for name in sorted(dataset.splits):
        split = dataset.splits[name]
        digest.update(f"split {name}|".encode())
        for array in (split.volumes, split.labels, split.masks):
            if array is None:
                digest.update(b"none|")
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}|".encode())
            if array.size:
                digest.update(memoryview(array).cast("B"))
    value = digest.hexdigest()
    try:
        object.__setattr__(dataset, "_liftbench_fingerprint", value)
    except (AttributeError, TypeError):  # a frozen or slotted container: compute again next time
        pass
    return value


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def file_identity(path: str | Path) -> str:
    """``sha256:<hex>`` of a weights file. A Hugging Face cache entry is a link to a blob named by its own
    sha256, which is taken as it is (hashing 14 GB of a 7B checkpoint at every plan would cost a minute)."""
    from liftbench.backbones.timm_backbones import file_sha256

    resolved = Path(path).resolve()
    if _SHA256.match(resolved.name) and resolved.parent.name == "blobs":
        return f"sha256:{resolved.name}"
    return f"sha256:{file_sha256(resolved)}"


def weights_identity(entry, weights: str) -> str:
    """What the weights a run asks for are (see the module docstring); raises :class:`MissingFileError` for a
    ``--weights PATH`` that does not exist, and whatever the backbone's locator raises for missing pretrained
    weights (offline: where to put the file)."""
    from liftbench.backbones.timm_backbones import random_seed

    seed = random_seed(weights)
    if seed is not None:
        return f"random:{seed}"
    if weights != "pretrained":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MissingFileError(
                f"weights file {str(path)!r} does not exist. --weights takes 'pretrained', 'random', 'random:SEED' or "
                f"the path of a local checkpoint for backbone {entry.name!r}."
            )
        return file_identity(path)
    found = entry.weights_file(weights)
    return file_identity(found) if found else "pretrained"
