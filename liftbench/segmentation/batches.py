"""Segmentation batches: stored volumes and masks to the network's input and target, per batch.

The order is the authors': intensities to [0, 1] (uint8 / 255), each slice resized in-plane to the
dataset's size for this use (image bilinear ``align_corners=False``, mask nearest; depth untouched),
then the dataset's augmentation (training only), then the backbone's normalisation. Resizing per batch
keeps the stored arrays at their native size: LIDC at 160² would not fit in memory as float.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from liftbench.datasets.volumes import VolumeDataset, VolumeSplit, prepare_batch, to_unit


def resize_inplane(image: torch.Tensor, mask: torch.Tensor | None, size: int | None):
    """``image (B, 1, D, H, W)`` float and ``mask (B, D, H, W)`` resized so H = W = ``size`` (None: as is)."""
    batch, chans, depth, height, width = image.shape
    if size is None or (height, width) == (size, size):
        return image, mask
    slices = image.transpose(1, 2).reshape(batch * depth, chans, height, width)
    slices = F.interpolate(slices, size=(size, size), mode="bilinear", align_corners=False)
    image = slices.reshape(batch, depth, chans, size, size).transpose(1, 2)
    if mask is not None:
        flat = mask.reshape(batch * depth, 1, height, width).float()
        mask = F.interpolate(flat, size=(size, size), mode="nearest").reshape(batch, depth, size, size).long()
    return image, mask


def seg_batch(
    dataset: VolumeDataset,
    split: VolumeSplit,
    index: Sequence[int] | np.ndarray,
    use: str,
    mean,
    std,
    *,
    augment: str = "none",
    rng: np.random.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised input ``(B, C, D, S, S)`` and integer target ``(B, D, S, S)`` of volumes ``index``.

    ``use`` picks the in-plane size (``"network"`` or ``"featdice"``); ``augment`` (``fixed`` or
    ``authors``) applies the dataset's training augmentation with ``rng``.
    """
    index = np.asarray(index)
    image = to_unit(split.volumes[index])
    mask = torch.as_tensor(split.masks[index]).long()
    image, mask = resize_inplane(image, mask, dataset.inplane.get(use))
    if augment != "none" and dataset.augment is not None:
        pairs = [dataset.augment(image[i], mask[i], rng, augment) for i in range(len(index))]
        image = torch.stack([p[0] for p in pairs])
        mask = torch.stack([p[1] for p in pairs]).long()
    return prepare_batch(image, mean, std), mask


def batches(count: int, size: int) -> list[np.ndarray]:
    """Consecutive index batches over ``count`` items (the last one partial)."""
    return [np.arange(start, min(start + size, count)) for start in range(0, count, size)]
