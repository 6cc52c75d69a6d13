"""LIDC-IDRI lung-nodule segmentation (PlaneCycle Table 3), read from the ACSConv release's files.

Why this layout: the PlaneCycle authors read the LIDC-IDRI patches that ACSConv (M3DV/ACSConv,
``experiments/lidc``) distributes as a zip on Google Drive; nothing builds them from raw LIDC-IDRI. Unzipped,
the release is ``train_test_split.csv`` (columns ``train`` and ``test`` of file names, the shorter column
padded with empty cells) and ``nodule/<name>.npz``, one nodule-centred patch each, holding ``voxel`` (uint8,
already windowed upstream; axis 0 is the slice axis D) and ``answer1`` .. ``answer4``, one boolean mask per
radiologist, any of which may be missing.

The ground truth is the mask of at least half of the readers *present* in the file (1 of 1, 1 of 2, 2 of 3,
2 of 4), as the authors compute it. Volumes stay uint8 at their native size: the protocol divides by 255 and
resizes each slice to ``inplane["network"]`` (the ``size`` asked for, 160 in every released config) or to
``inplane["featdice"]`` (640 in the authors' FeatDice script). Patches are batched by the authors, so every
patch must have the same shape; a file that differs is an error naming it.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from liftbench.datasets.data_folder import dataset_folder
from liftbench.datasets.slice_augment import rotate_flip
from liftbench.datasets.volumes import SPLITS, VolumeDataset, VolumeSplit
from liftbench.errors import MissingFileError, UsageError

SUBFOLDER = "lidc"
CSV = "train_test_split.csv"
ANSWERS = tuple(f"answer{k}" for k in range(1, 5))
MASK_CLASSES = ("background", "nodule")
DEFAULT_SIZE = 160  # the authors' in-plane network size
DEFAULT_FEATDICE_SIZE = 640  # the authors' FeatDice in-plane size
CITATION = (
    "LIDC-IDRI (Armato et al., Medical Physics 2011), patches of the ACSConv release (Yang et al., IEEE JBHI 2021)"
)
SOURCE = (
    "the ACSConv LIDC-IDRI release (github.com/M3DV/ACSConv, experiments/lidc: the LIDC zip on Google Drive, unzipped)"
)
LAYOUT = (
    f"<folder>/{CSV} (columns 'train' and 'test' holding file names) and <folder>/nodule/<name>.npz "
    "(arrays 'voxel' uint8 (D, H, W) and up to four boolean masks 'answer1'..'answer4' of the same shape)"
)


def _about(folder: Path | str) -> str:
    return f"lidc expects the layout {LAYOUT} in {folder}, from {SOURCE}."


def consensus_mask(answers: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """At least half of the available readers (none available: an empty mask), as uint8 {0, 1}."""
    total = np.sum(answers, axis=0, dtype=np.int64) if answers else np.zeros(shape, dtype=np.int64)
    count = len(answers) or 1
    return (total >= count / 2).astype(np.uint8)


def _split_names(csv: Path) -> dict[str, list[str]]:
    try:
        table = pd.read_csv(csv, dtype=str)  # names stay text, even all-digit ones; empty cells stay NaN
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UsageError(f"{csv} is not a readable CSV ({type(exc).__name__}: {exc}). {_about(csv.parent)}") from None
    missing = [c for c in ("train", "test") if c not in table.columns]
    if missing:
        raise UsageError(
            f"{csv} lacks column(s) {', '.join(missing)} (found: {', '.join(map(str, table.columns))}). "
            f"{_about(csv.parent)}"
        )
    return {split: [str(name).strip() for name in table[split].dropna()] for split in ("train", "test")}


def _patch_path(folder: Path, name: str) -> Path:
    """``nodule/<name>``; the release's CSV holds names with ``.npz``, a bare name gets it appended."""
    return folder / "nodule" / (name if name.endswith(".npz") else f"{name}.npz")


def _read_patch(path: Path, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(voxel, consensus mask) of one patch file, checked."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if "voxel" not in keys:
                raise UsageError(f"{path} has no array 'voxel' (found: {', '.join(sorted(keys))}). {_about(folder)}")
            voxel = npz["voxel"]
            answers = [npz[key] for key in ANSWERS if key in keys]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(
            f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}). {_about(folder)}"
        ) from None
    if voxel.dtype != np.uint8 or voxel.ndim != 3:
        raise UsageError(f"{path}: 'voxel' must be uint8 (D, H, W), got {voxel.dtype} {voxel.shape}. {_about(folder)}")
    for key, answer in zip([k for k in ANSWERS if k in keys], answers, strict=True):
        if answer.shape != voxel.shape:
            raise UsageError(f"{path}: '{key}' has shape {answer.shape}, 'voxel' {voxel.shape}. {_about(folder)}")
    return voxel, consensus_mask([a.astype(bool) for a in answers], voxel.shape)


def _read_splits(names: dict[str, list[str]], folder: Path) -> dict[str, VolumeSplit]:
    """Stack each split's patches, checking that every patch has the shape of the first one read."""
    paths = {split: [_patch_path(folder, name) for name in split_names] for split, split_names in names.items()}
    absent = [p for split_paths in paths.values() for p in split_paths if not p.is_file()]
    if absent:
        raise MissingFileError(
            f"{len(absent)} patch file(s) listed in {folder / CSV} are missing, e.g. {absent[0]}"
            + (f" and {absent[1]}" if len(absent) > 1 else "")
            + f". {_about(folder)}"
        )
    first: tuple[tuple[int, ...], Path] | None = None
    splits = {}
    for split, split_paths in paths.items():
        volumes, masks = [], []
        ids = [path.name for path in split_paths]
        for path in split_paths:
            voxel, mask = _read_patch(path, folder)
            first = first or (voxel.shape, path)
            if voxel.shape != first[0]:
                raise UsageError(
                    f"{path} holds a {voxel.shape} patch but {first[1]} holds {first[0]}: every lidc patch must "
                    f"have the same shape (they are batched together). {_about(folder)}"
                )
            volumes.append(voxel)
            masks.append(mask)
        splits[split] = (volumes, masks, ids)
    if first is None:
        raise UsageError(f"{folder / CSV} lists no patch in either column. {_about(folder)}")
    result = {split: _empty_split(first[0]) for split in SPLITS}
    for split, (volumes, masks, ids) in splits.items():
        if volumes:
            result[split] = VolumeSplit(np.stack(volumes)[:, None], np.zeros(len(volumes)), np.stack(masks), ids=ids)
    return result


def _empty_split(shape: tuple[int, ...]) -> VolumeSplit:
    return VolumeSplit(
        volumes=np.zeros((0, 1, *shape), np.uint8), labels=np.zeros(0), masks=np.zeros((0, *shape), np.uint8)
    )


def augment(
    image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator, mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' training augmentation: one in-plane rotation in U(-15°, 15°) (nearest, fill 0), then
    horizontal and vertical flips with p=0.5. ``"fixed"`` moves the mask with the image; ``"authors"`` moves
    the image only, as the released code does (its torchvision v2 call transforms only the first tensor)."""
    if mode not in ("fixed", "authors"):
        raise ValueError(f"augment mode must be 'fixed' or 'authors', got {mode!r}")
    return rotate_flip(image, mask, rng, transform_mask=mode == "fixed")


def load(
    size: int = DEFAULT_SIZE,
    data_root: str | os.PathLike | None = None,
    featdice_size: int = DEFAULT_FEATDICE_SIZE,
    **options,
) -> VolumeDataset:
    """Read the release from ``<data root>/lidc/``: train and test as the CSV says, no validation split.

    ``size`` is the in-plane size the network sees (any size >= 16; the authors use 160), ``featdice_size``
    the one FeatDice uses (the authors use 640); neither changes the stored arrays.
    """
    if options:
        raise UsageError(f"dataset 'lidc' got unknown option(s) {sorted(options)}; it accepts featdice_size")
    for what, value in (("size", size), ("featdice_size", featdice_size)):
        if int(value) < 16:
            raise UsageError(f"lidc {what} must be >= 16 (one 16-pixel patch per slice side), got {value}")
    folder = dataset_folder(data_root, SUBFOLDER, _about(f"<data root>/{SUBFOLDER}"))
    csv = folder / CSV
    if not csv.is_file():
        raise MissingFileError(f"lidc's split file {csv} was not found. {_about(folder)}")
    splits = _read_splits(_split_names(csv), folder)
    shape = splits["train"].volumes.shape[2:]
    return VolumeDataset(
        name="lidc",
        size=int(size),
        task="segmentation",
        num_classes=len(MASK_CLASSES),
        splits=splits,
        info={"citation": CITATION, "folder": str(folder), "patch_shape": "x".join(map(str, shape)), "lesion_centred": "true"},
        mask_classes=MASK_CLASSES,
        inplane={"network": int(size), "featdice": int(featdice_size)},
        augment=augment,
    )
