"""The built-in diagnostic set: helices whose handedness no single slice shows, at any depth.

Each volume holds one bright tube winding as a helix about the depth axis D: in slice ``z`` it is a disc of
radius ``r`` at angle ``phase + w * (z + 0.5)`` on a circle of radius ``R`` about an in-plane centre. The class
is the helix's handedness: ``right`` (the angle grows with depth) or ``left`` (it shrinks).

Why no single slice can tell the class, by construction:

* a ``left`` volume is *exactly* a ``right`` volume reversed along D (:func:`draw_volume` builds the ``right``
  one and flips it). The in-plane background depends on (H, W) only and the noise is drawn per voxel, so the
  flip is the only difference: the **multiset of slice images of a volume** is the same for either class
  (from the same draw, slice for slice), hence any per-slice model whose head ignores the slices' order
  (mean or max pooling, attention without depth positions) has exactly the same output distribution on both;
* the starting ``phase`` is uniform on [0, 2π), so the disc's angle at **every depth** is uniform for both
  classes: the slice at depth ``z`` has the same distribution whatever the class and whatever ``z``;
* each of the DW and DH planes alone is blind too: ``x(z) = R cos(phase ± w z)`` has the same law for both
  signs (phase → −phase). Handedness is the phase lag between the two, so a lifting must combine how
  neighbouring slices relate in H *and* in W to see it.

The paper's slice head (``Linear(D, 1)`` over slices, then linear) weights slices by depth, so it is not
order-blind in general; for this set it could separate the classes only through per-slice features that are
not mirror-symmetric (a mirror in-plane also swaps handedness), combined across several angular harmonics.
``tests/datasets/test_diagnostic.py`` measures that the built-in ViT's slice-2D features with the linear probe stay
within the chance bound derived from the test-set size (:mod:`liftbench.report.chance`).

The tube's voxels are the mask (label 1). Radii, pitch, centre, contrast and noise are drawn per volume
from ``numpy.random.default_rng`` seeded by (seed, split): a given (seed, size) always gives the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from liftbench.datasets.synthetic import augment
from liftbench.datasets.volumes import VolumeDataset, VolumeSplit
from liftbench.errors import UsageError

CLASSES = ("right", "left")
MASK_CLASSES = ("background", "tube")
DEFAULT_COUNTS = {"train": 96, "val": 32, "test": 80}
_SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}
MIN_SIZE = 16


@dataclass(frozen=True)
class Helix:
    """One volume's random draw (everything but the class)."""

    centre: tuple[float, float]  # (row, column) of the helix axis
    radius: float  # R: the axis-to-tube distance
    tube: float  # r: the disc's radius
    turns: float  # turns over the depth
    phase: float  # angle at depth 0, uniform on [0, 2π)
    contrast: float
    background: tuple[float, float, float, float]  # in-plane only: (freq_y, freq_x, phase_y, phase_x)


def draw_helix(size: int, rng: np.random.Generator) -> Helix:
    radius = rng.uniform(0.16, 0.24) * size
    tube = rng.uniform(0.09, 0.12) * size
    margin = radius + tube + 1.0
    centre = tuple(rng.uniform(margin, size - margin, 2))
    freq = rng.uniform(0.5, 2.0, 2) * 2 * np.pi / size
    return Helix(centre=centre, radius=radius, tube=tube, turns=rng.uniform(0.75, 1.5), phase=rng.uniform(0, 2 * np.pi),
                 contrast=rng.uniform(0.35, 0.6), background=(*freq, *rng.uniform(0, 2 * np.pi, 2)))  # fmt: skip


def right_handed(helix: Helix, size: int, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``right`` volume (uint8) and mask of ``helix``, with ``noise`` (D, H, W) added."""
    axis = np.arange(size, dtype=np.float64) + 0.5
    angle = helix.phase + 2 * np.pi * helix.turns * axis / size  # per depth
    cy = helix.centre[0] + helix.radius * np.sin(angle)
    cx = helix.centre[1] + helix.radius * np.cos(angle)
    y, x = axis[None, :, None], axis[None, None, :]
    mask = (y - cy[:, None, None]) ** 2 + (x - cx[:, None, None]) ** 2 <= helix.tube**2
    fy, fx, py, px = helix.background
    background = 0.25 + 0.08 * (np.sin(fy * y + py) + np.sin(fx * x + px)) / 2  # no depth term: flip-invariant
    volume = background + helix.contrast * mask + noise
    return (np.clip(volume, 0.0, 1.0) * 255).round().astype(np.uint8), mask.astype(np.uint8)


def draw_volume(label: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One volume of class ``label``: the ``right`` helix of one draw, reversed along D for ``left``.
    The draw consumes the same random numbers for either class, so a test can compare the two."""
    helix = draw_helix(size, rng)
    volume, mask = right_handed(helix, size, rng.normal(0.0, 0.05, (size,) * 3))
    if CLASSES[label] == "left":
        volume, mask = volume[::-1].copy(), mask[::-1].copy()
    return volume, mask


def make_split(count: int, size: int, seed: int) -> VolumeSplit:
    """``count`` volumes of ``size``³ with balanced classes, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(CLASSES)
    rng.shuffle(labels)
    volumes = np.empty((count, 1, size, size, size), dtype=np.uint8)
    masks = np.empty((count, size, size, size), dtype=np.uint8)
    for i, label in enumerate(labels):
        volumes[i, 0], masks[i] = draw_volume(int(label), size, rng)
    return VolumeSplit(volumes=volumes, labels=labels.astype(np.int64), masks=masks)


@lru_cache(maxsize=4)
def _load(size: int, seed: int, counts: tuple[tuple[str, int], ...]) -> VolumeDataset:
    splits = {name: make_split(n, size, seed * 101 + _SPLIT_SEEDS[name]) for name, n in counts}
    return VolumeDataset(
        name="diagnostic",
        size=size,
        task="binary-class",
        num_classes=len(CLASSES),
        splits=splits,
        label_names=CLASSES,
        info={"citation": "liftbench diagnostic set (helix handedness)", "seed": str(seed)},
        mask_classes=MASK_CLASSES,
        augment=augment,
    )


def load(size: int = 32, data_root: str | None = None, seed: int = 0, n_train: int | None = None,
         n_val: int | None = None, n_test: int | None = None) -> VolumeDataset:  # fmt: skip
    """Generate the diagnostic set at ``size``³ (any size ≥ 16)."""
    if int(size) < MIN_SIZE:
        raise UsageError(f"diagnostic volumes need size >= {MIN_SIZE} (one 16-pixel patch); got {size}")
    counts = {"train": n_train, "val": n_val, "test": n_test}
    resolved = tuple((name, int(counts[name] or DEFAULT_COUNTS[name])) for name in ("train", "val", "test"))
    return _load(int(size), int(seed), resolved)
