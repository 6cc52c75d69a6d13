"""The built-in synthetic dataset: generated in seconds from a seed, no download.

Each volume holds one bright object in a noisy, smoothly varying background. The class lies in the
object's course *across* slices, so a single axial slice cannot tell it — every class shows a disc in
the slices it crosses:

* ``axial-tube``   — a tube along the depth axis: the same disc in every slice it spans;
* ``oblique-tube`` — a tube tilted in the depth/row plane: the disc drifts from slice to slice;
* ``blob``         — an ellipsoid: the disc grows, then shrinks, and is absent elsewhere.

The object's voxels are the lesion mask (label 1), for zero-training FeatDice and the segmentation
protocols, whose training augmentation is :func:`augment`. Positions, radii,
tilts, contrast and noise are drawn per volume from ``numpy.random.default_rng`` seeded by
(seed, split), so a given (seed, size) always gives the same data.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from liftbench.datasets.slice_augment import rotate_flip
from liftbench.datasets.volumes import VolumeDataset, VolumeSplit
from liftbench.errors import UsageError

CLASSES = ("axial-tube", "oblique-tube", "blob")
MASK_CLASSES = ("background", "lesion")
# FeatDice scores slices resized in-plane 4x, as the authors score LIDC at 640² against their 160² network
# input: a 32³ volume has 4×4 tokens per slice at patch 8, too coarse for a map thresholded at 0.9.
FEATDICE_UPSAMPLING = 4
DEFAULT_COUNTS = {"train": 120, "val": 45, "test": 45}
_SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def _object_mask(label: int, size: int, rng: np.random.Generator, grid) -> np.ndarray:
    z, y, x = grid
    radius = rng.uniform(0.08, 0.14) * size
    margin = radius + 0.1 * size
    cy, cx = rng.uniform(margin, size - margin, 2)
    if label == 2:  # blob: an ellipsoid elongated along depth
        cz = rng.uniform(0.35, 0.65) * size
        rz = radius * rng.uniform(1.3, 2.0)
        return ((z - cz) / rz) ** 2 + ((y - cy) / radius) ** 2 + ((x - cx) / radius) ** 2 <= 1.0
    z0, z1 = sorted(rng.uniform(0.05, 0.95, 2) * size)
    z0, z1 = min(z0, 0.2 * size), max(z1, 0.8 * size)
    if label == 1:  # oblique tube: the centre row moves with depth
        slope = rng.choice([-1, 1]) * rng.uniform(0.35, 0.6)
        centre = size / 2 + slope * (z - size / 2)
        cy_z = np.clip(centre, radius, size - radius)
        disc = (y - cy_z) ** 2 + (x - cx) ** 2 <= radius**2
    else:  # axial tube
        disc = (y - cy) ** 2 + (x - cx) ** 2 <= radius**2
    return disc & (z >= z0) & (z <= z1)


def _volume(label: int, size: int, rng: np.random.Generator, grid) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = grid
    mask = _object_mask(label, size, rng, grid)
    phase = rng.uniform(0, 2 * np.pi, 3)
    freq = rng.uniform(0.5, 2.0, 3) * 2 * np.pi / size
    background = 0.25 + 0.08 * (np.sin(freq[0] * z + phase[0]) + np.sin(freq[1] * y + phase[1]) + np.sin(freq[2] * x + phase[2])) / 3
    contrast = rng.uniform(0.35, 0.6)
    volume = background + contrast * mask + rng.normal(0.0, 0.05, mask.shape)
    return (np.clip(volume, 0.0, 1.0) * 255).round().astype(np.uint8), mask.astype(np.uint8)


def make_split(count: int, size: int, seed: int) -> VolumeSplit:
    """``count`` volumes of ``size``³ with balanced classes, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*(np.arange(size, dtype=np.float32) + 0.5,) * 3, indexing="ij")
    labels = np.arange(count) % len(CLASSES)
    rng.shuffle(labels)
    volumes = np.empty((count, 1, size, size, size), dtype=np.uint8)
    masks = np.empty((count, size, size, size), dtype=np.uint8)
    for i, label in enumerate(labels):
        volumes[i, 0], masks[i] = _volume(int(label), size, rng, grid)
    return VolumeSplit(volumes=volumes, labels=labels.astype(np.int64), masks=masks)


@lru_cache(maxsize=4)
def _load(size: int, seed: int, counts: tuple[tuple[str, int], ...]) -> VolumeDataset:
    splits = {name: make_split(n, size, seed * 101 + _SPLIT_SEEDS[name]) for name, n in counts}
    return VolumeDataset(
        name="synthetic",
        size=size,
        task="multi-class",
        num_classes=len(CLASSES),
        splits=splits,
        label_names=CLASSES,
        info={"citation": "liftbench synthetic set", "seed": str(seed)},
        mask_classes=MASK_CLASSES,
        inplane={"featdice": FEATDICE_UPSAMPLING * size},
        augment=augment,
    )


def augment(
    image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator, mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """One in-plane rotation in U(-15°, 15°) and random flips, image and mask together (LIDC's "fixed").

    There are no authors to reproduce for this set, so ``"authors"`` is the same as ``"fixed"``: a
    segmentation protocol run offline in either mode trains on correctly paired samples.
    """
    if mode not in ("fixed", "authors"):
        raise ValueError(f"augment mode must be 'fixed' or 'authors', got {mode!r}")
    return rotate_flip(image, mask, rng, transform_mask=True)


def load(size: int = 32, data_root: str | None = None, seed: int = 0, n_train: int | None = None, n_val: int | None = None, n_test: int | None = None) -> VolumeDataset:
    """Generate the synthetic set at ``size``³ (any size ≥ 16; 28, 32 and 64 are the usual ones)."""
    if int(size) < 16:
        raise UsageError(f"synthetic volumes need size >= 16 (one 16-pixel patch); got {size}")
    counts = {"train": n_train, "val": n_val, "test": n_test}
    resolved = tuple((name, DEFAULT_COUNTS[name] if counts[name] is None else int(counts[name])) for name in counts)
    too_few = [f"n_{name}={count}" for name, count in resolved if count < 1]
    if too_few:  # 0 is not "the default": it would be recorded as asked while another count is used
        raise UsageError(f"synthetic split sizes must be >= 1; got {', '.join(too_few)}")
    return _load(int(size), int(seed), resolved)
