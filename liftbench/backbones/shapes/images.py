"""The 2D pretraining task of the shapes backbones: generated 32×32 grayscale images, no download.

Each image is one bright object (or none) on a smoothly varying background with Gaussian noise, in the
style of the synthetic 3D volumes (:mod:`liftbench.datasets.synthetic`), whose slices on the axial,
coronal and sagittal planes show exactly these shapes: discs (a tube or blob cut across), bars (a tube
cut along its length, upright or tilted) and ellipses (a blob, or a tilted tube cut obliquely).

Labels (what a network is trained to tell from one image):

* ``shape`` — one of :data:`CLASSES`: ``disc``, ``bar-θ`` and ``ellipse-θ`` for the long axis nearest
  θ ∈ {0, 45, 90, 135} degrees (0 = along the image rows, 90 = along the columns; the angle itself is
  drawn uniformly, so neighbouring orientation classes meet at 22.5° boundaries), and ``none``;
* ``cell`` — which of the 4×4 cells of 8×8 pixels holds the object's centre (-1 for ``none``);
* ``size`` — small / medium / large by the object's area (-1 for ``none``);
* ``target`` — regression targets ``(cy, cx, sqrt(area)/8 - 1, cos 2θ, sin 2θ)`` scaled to about [-1, 1],
  with ``target_mask`` saying which of them are defined (no position for ``none``, no angle for discs).

Everything is drawn with ``numpy.random.default_rng(seed)`` and vectorised over the batch, so
:func:`make_images` gives the same arrays for the same (count, seed, size) on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ORIENTATIONS = (0, 45, 90, 135)
CLASSES = ("disc", *(f"bar-{a}" for a in ORIENTATIONS), *(f"ellipse-{a}" for a in ORIENTATIONS), "none")
NUM_CLASSES = len(CLASSES)
GRID = 4  # position cells per side
SIZE_BINS = (7.0, 9.6)  # sqrt(area) thresholds (pixels at 32²) of the small / medium / large terciles
TARGETS = ("cy", "cx", "size", "cos2a", "sin2a")

_DISC, _BAR, _ELLIPSE, _NONE = 0, 1, 2, 3
# How often each kind is drawn: disc, bar, ellipse, none (bars and ellipses split over 4 orientations).
_KIND_P = np.array([0.16, 0.34, 0.34, 0.16])


@dataclass
class ImageBatch:
    """``images`` (N, size, size) float32 in [0, 1], quantised to 1/255 as uint8 volumes are."""

    images: np.ndarray
    shape: np.ndarray
    cell: np.ndarray
    size: np.ndarray
    target: np.ndarray
    target_mask: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def _background(rng: np.random.Generator, n: int, size: int, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A level plus three sinusoids (rows, columns, a random direction), as the 3D volumes have."""
    level = rng.uniform(0.15, 0.35, (n, 1, 1))
    amplitude = rng.uniform(0.0, 0.14, (n, 1, 1))
    freq = rng.uniform(0.5, 2.0, (n, 3, 1, 1)) * 2 * np.pi / size
    phase = rng.uniform(0, 2 * np.pi, (n, 3, 1, 1))
    direction = rng.uniform(0, np.pi, (n, 1, 1))
    diagonal = x * np.cos(direction) + y * np.sin(direction)
    waves = (
        np.sin(freq[:, 0] * y + phase[:, 0])
        + np.sin(freq[:, 1] * x + phase[:, 1])
        + np.sin(freq[:, 2] * diagonal + phase[:, 2])
    )
    return level + amplitude * waves / 3


def make_images(count: int, seed: int, size: int = 32) -> ImageBatch:
    """``count`` labelled images of ``size``², deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(count)
    coords = np.arange(size, dtype=np.float64) + 0.5
    y, x = np.meshgrid(coords, coords, indexing="ij")
    y, x = y[None], x[None]
    scale = size / 32.0

    kind = rng.choice(4, size=n, p=_KIND_P)
    angle = rng.uniform(0, np.pi, n)
    # Half axes along (u) and across (v) the long axis, in pixels at 32².
    disc_r = rng.uniform(1.5, 5.5, n)
    bar_half_len = rng.uniform(7.0, 17.0, n)
    bar_half_width = np.minimum(rng.uniform(0.75, 4.5, n), bar_half_len / 2.5)
    ell_a = rng.uniform(3.0, 10.0, n)
    ell_b = np.maximum(ell_a / rng.uniform(1.5, 3.2, n), 1.0)
    half_u = np.select([kind == _DISC, kind == _BAR, kind == _ELLIPSE], [disc_r, bar_half_len, ell_a], 0.0) * scale
    half_v = np.select([kind == _DISC, kind == _BAR, kind == _ELLIPSE], [disc_r, bar_half_width, ell_b], 0.0) * scale
    # Centres keep discs and ellipses whole; long bars may run off the image, as tubes run off a slice.
    extent = np.where(kind == _BAR, np.minimum(half_u, 8.0 * scale), half_u) + 1.0
    extent = np.minimum(extent, size / 2 - 1.0)
    cy = rng.uniform(extent, size - extent)
    cx = rng.uniform(extent, size - extent)

    dy, dx = y - cy[:, None, None], x - cx[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u = dx * cos + dy * sin  # along the long axis (angle 0 = along the rows, i.e. the x axis)
    v = -dx * sin + dy * cos
    hu, hv = half_u[:, None, None], half_v[:, None, None]
    round_mask = (u / np.maximum(hu, 1e-6)) ** 2 + (v / np.maximum(hv, 1e-6)) ** 2 <= 1.0
    bar_mask = (np.abs(u) <= hu) & (np.abs(v) <= hv)
    kind3 = kind[:, None, None]
    mask = np.where(kind3 == _BAR, bar_mask, round_mask) & (kind3 != _NONE)

    contrast = rng.uniform(0.25, 0.65, (n, 1, 1))
    noise = rng.uniform(0.02, 0.08, (n, 1, 1))
    images = _background(rng, n, size, y, x) + contrast * mask + rng.normal(0.0, 1.0, mask.shape) * noise
    images = np.round(np.clip(images, 0.0, 1.0) * 255) / 255

    orientation = np.round(angle / (np.pi / 4)).astype(np.int64) % len(ORIENTATIONS)
    shape = np.select(
        [kind == _DISC, kind == _BAR, kind == _ELLIPSE],
        [np.zeros(n, np.int64), 1 + orientation, 1 + len(ORIENTATIONS) + orientation],
        NUM_CLASSES - 1,
    )
    present = kind != _NONE
    area = mask.sum(axis=(1, 2)).astype(np.float64)
    root_area = np.sqrt(area) / scale
    cell_y = np.clip((cy / size * GRID).astype(np.int64), 0, GRID - 1)
    cell_x = np.clip((cx / size * GRID).astype(np.int64), 0, GRID - 1)
    cell = np.where(present, cell_y * GRID + cell_x, -1)
    size_bin = np.where(present, np.digitize(root_area, SIZE_BINS), -1)
    target = np.stack(
        [cy / size * 2 - 1, cx / size * 2 - 1, root_area / 8.0 - 1.0, np.cos(2 * angle), np.sin(2 * angle)], axis=1
    )
    has_angle = present & (kind != _DISC)
    target_mask = np.stack([present, present, present, has_angle, has_angle], axis=1)
    target = np.where(target_mask, target, 0.0)
    return ImageBatch(
        images=images.astype(np.float32),
        shape=shape.astype(np.int64),
        cell=cell.astype(np.int64),
        size=size_bin.astype(np.int64),
        target=target.astype(np.float32),
        target_mask=target_mask,
    )
