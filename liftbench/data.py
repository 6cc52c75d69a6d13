"""Volume datasets as every protocol sees them, and the preprocessing the paper uses.

A dataset plugin's ``load`` returns a :class:`VolumeDataset`: train/val/test :class:`VolumeSplit` s of
``(N, 1, D, H, W)`` volumes (uint8 0..255 or float in [0, 1]), integer labels and optional lesion
masks. Batches are turned into model input by :func:`prepare_batch`: intensities in [0, 1], grayscale
repeated to the backbone's channels, normalised with the backbone's own mean/std (docs/strategies.md, "Conventions").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

TASKS = ("binary-class", "multi-class")
SPLITS = ("train", "val", "test")


@dataclass
class VolumeSplit:
    """One split. ``masks`` (N, D, H, W) hold 0 for background and k > 0 for lesion class k."""

    volumes: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.volumes.ndim != 5 or self.volumes.shape[1] != 1:
            raise ValueError(f"volumes must be (N, 1, D, H, W), got {self.volumes.shape}")
        self.labels = np.asarray(self.labels).reshape(-1).astype(np.int64)
        if len(self.labels) != len(self.volumes):
            raise ValueError(f"{len(self.volumes)} volumes but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.volumes)


@dataclass
class VolumeDataset:
    """A dataset at one input size, with its task and the text a leaderboard cites."""

    name: str
    size: int
    task: str
    num_classes: int
    splits: dict[str, VolumeSplit]
    label_names: Sequence[str] = ()
    info: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"dataset {self.name!r} lacks split(s) {missing}")

    @property
    def has_masks(self) -> bool:
        return all(split.masks is not None for split in self.splits.values())


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
