"""Tiny MedMNIST 3D files in the exact on-disk format, so tests load them through the real loader.

MedMNIST 3D ships one ``.npz`` per (flag, size): ``{flag}.npz`` at 28, ``{flag}_{size}.npz`` at 64,
holding ``{split}_images`` uint8 ``(N, S, S, S)`` and ``{split}_labels`` uint8 ``(N, 1)`` for the splits
train/val/test. Real files hold the official counts (``INFO[flag]['n_samples']``); these hold a few
volumes, which ``liftbench.datasets.medmnist3d`` accepts because it never calls medmnist's asserting
``__len__``. Every class appears in every split, so AUC is defined on each.
"""

from __future__ import annotations

from pathlib import Path

import medmnist
import numpy as np

SPLITS = ("train", "val", "test")


def write_medmnist_npz(
    root: str | Path,
    flag: str,
    size: int,
    n_per_split: tuple[int, int, int] | None = None,
    seed: int = 0,
) -> Path:
    """Write ``{flag}[_{size}].npz`` under ``root`` and return its path.

    ``n_per_split`` gives (train, val, test) counts; by default two volumes per class per split (and at
    least the number of classes, which each split must reach). Volumes carry a faint class-dependent
    brightness so a model could in principle learn something; the values are otherwise random.
    """
    info = medmnist.INFO[flag]
    num_classes = len(info["label"])
    counts = n_per_split or (2 * num_classes,) * 3
    if len(counts) != 3 or min(counts) < num_classes:
        raise ValueError(f"{flag} has {num_classes} classes: each split needs at least that many volumes, got {counts}")
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(SPLITS, counts, strict=True):
        labels = np.concatenate([np.arange(num_classes), rng.integers(0, num_classes, n - num_classes)])
        labels = rng.permutation(labels).astype(np.uint8)
        noise = rng.integers(0, 64, size=(n, size, size, size))
        images = noise + (labels.astype(np.int64) * (160 // max(num_classes - 1, 1)))[:, None, None, None]
        arrays[f"{split}_images"] = images.clip(0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels.reshape(n, 1)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / (f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz")
    np.savez_compressed(path, **arrays)
    return path
