"""Volume datasets as every protocol sees them, and the preprocessing the paper uses.

A dataset plugin's ``load`` returns a :class:`VolumeDataset`: train/val/test :class:`VolumeSplit` s of
``(N, 1, D, H, W)`` volumes (uint8 0..255 or float in [0, 1]), integer labels and optional masks of class
ids (multi-class masks are first-class: MMWHS has 5 structures plus background). A segmentation-only
dataset (LIDC, MMWHS) has task ``"segmentation"`` and all-zero labels. Batches are turned into model input by :func:`prepare_batch`: intensities in [0, 1], grayscale
repeated to the backbone's channels, normalised with the backbone's own mean/std (docs/strategies.md, "Conventions").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

TASKS = ("binary-class", "multi-class", "segmentation")
SPLITS = ("train", "val", "test")


class DatasetContractError(ValueError):
    """A :class:`VolumeSplit` or :class:`VolumeDataset` built against its contract (a 4-D volume array,
    fractional labels, a missing split). A ``ValueError`` as before; :func:`liftbench.checks.load_dataset`
    turns one raised inside a dataset plugin's ``load`` into a :class:`~liftbench.errors.PluginError` naming
    the plugin."""


@dataclass
class VolumeSplit:
    """One split. ``masks`` (N, D, H, W) hold 0 for background and k > 0 for mask class k. A split may be
    empty (LIDC and MMWHS ship no validation split: segmentation protocols carve one from train)."""

    volumes: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None
    ids: Sequence[str] | None = None  # one name per volume (a LIDC patch file, an MMWHS case), for per-volume results

    def __post_init__(self) -> None:
        shape = getattr(self.volumes, "shape", None)
        if not isinstance(self.volumes, np.ndarray) or self.volumes.ndim != 5 or shape[1] != 1:
            got = f"shape {tuple(shape)}" if shape is not None else f"a {type(self.volumes).__name__}"
            raise DatasetContractError(f"volumes must be a numpy array (N, 1, D, H, W), got {got}")
        labels = np.asarray(self.labels).reshape(-1)
        if labels.dtype.kind not in "biu":  # float zeros (segmentation sets) are fine; 1.7 or NaN is not
            if labels.dtype.kind != "f" or not np.array_equal(labels, np.round(labels)):
                raise DatasetContractError(f"labels must be integers, got {labels.dtype} values such as {labels[:3].tolist()}")
        self.labels = labels.astype(np.int64)
        if len(self.labels) != len(self.volumes):
            raise DatasetContractError(f"{len(self.volumes)} volumes but {len(self.labels)} labels")
        if self.ids is not None and len(self.ids) != len(self.volumes):
            raise DatasetContractError(f"{len(self.volumes)} volumes but {len(self.ids)} ids")

    def __len__(self) -> int:
        return len(self.volumes)

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the split's volumes and masks: what a cache of its features must match (moving MMWHS cases
        between the training and test folders keeps the counts but changes this). Computed once per split
        object: a grid's runs share the dataset, and LIDC's volumes are over a GB to hash."""
        digest = hashlib.blake2b(digest_size=12)
        for array in (self.volumes, self.masks):
            if array is not None:
                digest.update(str((array.shape, array.dtype.str)).encode())
                if array.size:
                    digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
        return digest.hexdigest()


@dataclass
class VolumeDataset:
    """A dataset at one input size, with its task and the text a leaderboard cites.

    Segmentation protocols also read:

    - ``mask_classes``: names of the mask values 0..K-1, background first (empty: binary lesion masks,
      ``("background", "lesion")``);
    - ``inplane``: the in-plane size each slice is resized to before the network, per use (``"network"``
      for seg-linear/seg-finetune, ``"featdice"``); a missing key means as stored. Resizing happens per
      batch (image bilinear, mask nearest), so the stored arrays stay at their native size;
    - ``augment(image (1, D, H, W) float, mask (D, H, W) int64, rng, mode) -> (image, mask)``: the
      dataset's training augmentation at network resolution, ``mode`` ``"fixed"`` (image and mask
      together) or ``"authors"`` (the released code's behaviour, bugs included); ``None``: none.
    """

    name: str
    size: int
    task: str
    num_classes: int
    splits: dict[str, VolumeSplit]
    label_names: Sequence[str] = ()
    info: dict[str, str] = field(default_factory=dict)
    mask_classes: tuple[str, ...] = ()
    inplane: dict[str, int] = field(default_factory=dict)
    augment: Callable | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DatasetContractError(f"task must be one of {TASKS}, got {self.task!r}")
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise DatasetContractError(f"dataset {self.name!r} lacks split(s) {missing}")

    @property
    def has_masks(self) -> bool:
        return all(split.masks is not None for split in self.splits.values())

    @property
    def mask_names(self) -> tuple[str, ...]:
        """Names of the mask classes, background first (binary lesion masks when none are declared)."""
        return tuple(self.mask_classes) or ("background", "lesion")


def to_unit(volumes: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Intensities as float32 in [0, 1] (uint8 volumes are divided by 255)."""
    tensor = torch.as_tensor(volumes)
    if tensor.dtype == torch.uint8:
        return tensor.float().div_(255.0)
    return tensor.float()


def prepare_batch(volumes: np.ndarray | torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(B, 1, D, H, W)`` raw volumes → ``(B, len(mean), D, H, W)`` normalised model input."""
    x = to_unit(volumes)
    channels = len(mean)
    if x.shape[1] == 1 and channels > 1:
        x = x.expand(-1, channels, -1, -1, -1)
    mean_t = torch.tensor(mean, dtype=x.dtype).view(1, channels, 1, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype).view(1, channels, 1, 1, 1)
    return (x - mean_t) / std_t
