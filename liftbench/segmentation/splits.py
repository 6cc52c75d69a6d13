"""Where a segmentation run selects its checkpoint and threshold: a validation split, or (as the authors
did) the test set.

LIDC and MMWHS ship no validation split, and the authors select the best checkpoint and the LIDC
threshold on the test set, which makes Table 3 optimistic. liftbench's default (``selection=val``) uses
the dataset's validation split when it has one, else carves ``val_fraction`` of the training volumes
(at least one, leaving at least one) with the recorded ``split_seed``; ``selection=test`` reproduces the
authors. Every row records ``selected_on``.
"""

from __future__ import annotations

import numpy as np

from liftbench.datasets.volumes import VolumeDataset, VolumeSplit
from liftbench.errors import UsageError

SELECTIONS = ("val", "test")


def carved_count(train: int, fraction: float) -> int:
    """How many of ``train`` volumes a carved validation split holds: ``fraction`` of them, at least one,
    leaving at least one."""
    return min(max(1, round(fraction * train)), train - 1)


def subset(split: VolumeSplit, index: np.ndarray) -> VolumeSplit:
    ids = None if split.ids is None else [split.ids[i] for i in index]
    return VolumeSplit(volumes=split.volumes[index], labels=split.labels[index], masks=None if split.masks is None else split.masks[index], ids=ids)


def selection_splits(dataset: VolumeDataset, selection: str, fraction: float, seed: int) -> tuple[VolumeSplit, VolumeSplit, dict]:
    """``(train, select, notes)``: the volumes to train on and those to select on; ``notes`` say how."""
    if selection not in SELECTIONS:
        raise UsageError(f"invalid selection {selection!r}; valid: {', '.join(SELECTIONS)}")
    train = dataset.splits["train"]
    if selection == "test":
        return train, dataset.splits["test"], {"selected_on": "test"}
    if len(dataset.splits["val"]):
        return train, dataset.splits["val"], {"selected_on": "val"}
    if not 0.0 < fraction < 1.0:
        raise UsageError(f"val_fraction must lie in (0, 1), got {fraction}")
    if len(train) < 2:
        raise UsageError(f"dataset {dataset.name!r} has {len(train)} training volume(s): too few to carve a validation split; use selection=test")
    order = np.random.default_rng(seed).permutation(len(train))
    count = carved_count(len(train), fraction)
    held, kept = np.sort(order[:count]), np.sort(order[count:])
    notes = {"selected_on": "val", "val_carved_from_train": int(count), "split_seed": int(seed)}
    return subset(train, kept), subset(train, held), notes
