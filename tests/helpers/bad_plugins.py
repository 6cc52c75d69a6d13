"""A dataset plugin that hands over a chosen flaw, for the boundary checks (``tests/plugin/test_bad_inputs_plugins.py``).

``flawed`` is registered with the option ``flaw`` (which mistake to make, ``none`` for a correct dataset)
and the split-size options it may or may not honour; ``flawed-seg`` is the same as a segmentation set
stored at a native in-plane size, resized by ``inplane["network"]`` like LIDC.
"""

from __future__ import annotations

import numpy as np

from liftbench import Option, hookimpl
from liftbench.datasets.synthetic import make_split
from liftbench.datasets.volumes import VolumeDataset, VolumeSplit

FLAWS = (
    "none", "4d-volumes", "wrong-size", "wrong-dataset-size", "float-above-one", "nan-volumes", "int16-volumes",
    "empty-train", "empty-val", "labels-out-of-range", "fractional-labels", "labels-count", "masks-shape",
    "masks-values", "no-masks", "not-a-dataset", "ignores-n-train", "one-class-test",
)  # fmt: skip
COUNTS = {"train": 6, "val": 6, "test": 6}


def load(size: int, data_root: str | None = None, flaw: str = "none", n_train: int | None = None):
    """A 3-class synthetic set at ``size``³ with ``flaw`` made on purpose."""
    counts = dict(COUNTS, train=n_train or COUNTS["train"])
    if flaw == "ignores-n-train":
        counts["train"] = COUNTS["train"]
    stored = size - 8 if flaw == "wrong-size" else size
    splits = {name: make_split(0 if (flaw, name) in (("empty-train", "train"), ("empty-val", "val")) else n, stored, k)
              for k, (name, n) in enumerate(counts.items())}  # fmt: skip
    train = splits["train"]
    if flaw == "4d-volumes":  # the plugin forgot the channel axis: VolumeSplit itself refuses it
        splits["train"] = VolumeSplit(volumes=train.volumes[:, 0], labels=train.labels)
    elif flaw == "float-above-one":
        train.volumes = train.volumes.astype(np.float32)  # 0..255 as float: never divided by 255
    elif flaw == "nan-volumes":
        train.volumes = train.volumes.astype(np.float32) / 255
        train.volumes[1, 0, 2, 2, 2] = np.nan
    elif flaw == "int16-volumes":
        train.volumes = train.volumes.astype(np.int16)
    elif flaw == "labels-out-of-range":
        train.labels[0] = 3
    elif flaw == "fractional-labels":
        splits["train"] = VolumeSplit(volumes=train.volumes, labels=train.labels + 0.5)
    elif flaw == "labels-count":
        train.labels = train.labels[:-1]
    elif flaw == "masks-shape":
        train.masks = train.masks[:, :, :-1]
    elif flaw == "masks-values":
        train.masks[0, 0, 0, 0] = 2  # binary lesion masks hold 0 and 1
    elif flaw == "no-masks":
        train.masks = None
    elif flaw == "one-class-test":
        splits["test"].labels[:] = 0
    dataset = VolumeDataset(
        name="flawed", size=size + 1 if flaw == "wrong-dataset-size" else size, task="multi-class", num_classes=3,
        splits=splits, label_names=("a", "b", "c"),
    )  # fmt: skip
    return {"splits": splits} if flaw == "not-a-dataset" else dataset


def load_seg(size: int, data_root: str | None = None, stored: int = 24, network: bool = True):
    """A segmentation set stored at ``stored``³ (depth and in-plane); the network sees ``size`` in-plane
    through ``inplane["network"]`` when ``network``, else the stored slices."""
    splits = {name: make_split(n, stored, k) for k, (name, n) in enumerate(COUNTS.items())}
    for split in splits.values():
        split.labels = np.zeros(len(split), np.int64)
    empty = splits["val"]
    splits["val"] = VolumeSplit(empty.volumes[:0], np.zeros(0), empty.masks[:0])
    return VolumeDataset(
        name="flawed-seg", size=size, task="segmentation", num_classes=2, splits=splits,
        mask_classes=("background", "lesion"), inplane={"network": size} if network else {},
    )  # fmt: skip


class FlawedDatasets:
    """Registers ``flawed`` and ``flawed-seg`` (plugin name: the pair's first item where it is added)."""

    @hookimpl
    def liftbench_register_datasets(self, registrar):
        registrar.add("flawed", "bad_plugins:load", has_masks=True, description="a dataset with a chosen flaw",
                      parameters={"flaw": Option(str, "none", "the flaw", choices=FLAWS),
                                  "n_train": Option(int, None, "training volumes", min=1)})  # fmt: skip
        registrar.add("flawed-seg", "bad_plugins:load_seg", has_masks=True, has_labels=False,
                      description="a segmentation set stored at a native size",
                      parameters={"stored": Option(int, 24, "stored size", min=16),
                                  "network": Option(bool, True, "resize in-plane to the run's size")})  # fmt: skip
