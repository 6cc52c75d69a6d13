"""MMWHS whole-heart segmentation, CT and MRI (PlaneCycle Table 3), read from a preprocessed NIfTI release.

Why this layout: the PlaneCycle authors read a third-party preprocessed copy of the 20 labelled MMWHS-2017
training cases per modality, not the challenge's own files (those label 7 structures with values 205..850).
Each modality has one flat folder per split, ``training_set/`` and ``testing_set/``, of case triplets
``<case>image.nii.gz``, ``<case>label.nii.gz`` (integers 0..5: background and 5 structures) and
``<case>sdf.nii.gz``. The authors' loader opens the sdf without using it, so a case without one fails there;
we require it to exist and never read it. Which 5 structures the labels are, their order, the voxel spacing
and which 4 cases are the test set are not documented by the authors or the release; liftbench names the
classes ``structure-1`` .. ``structure-5``.

Preprocessing is the authors': clamp to the modality's window (CT -250..800 HU, MRI 0..1000), rescale it to
[0, 1], then centre crop-or-pad to ``size``³ (64 in the released configs; a crop, not a resize: the release's
volumes are already about 64³). The slice axis D is the first NIfTI axis by default, as the authors slice
(sagittal in RAS orientation, while the paper speaks of axial slices); ``slice_axis`` picks another.

Augmentation (training only) is the authors' torchio pipeline on image and label together, in two modes: see
:mod:`liftbench.datasets.mmwhs_augment`.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from liftbench.datasets.data_folder import dataset_folder
from liftbench.datasets.mmwhs_augment import augment
from liftbench.datasets.volumes import VolumeDataset, VolumeSplit
from liftbench.errors import MissingFileError, UsageError

WINDOWS = {"CT": (-250.0, 800.0), "MRI": (0.0, 1000.0)}
FOLDERS = {"train": "training_set", "test": "testing_set"}
SUFFIXES = ("image.nii.gz", "label.nii.gz", "sdf.nii.gz")
MASK_CLASSES = ("background", *(f"structure-{k}" for k in range(1, 6)))
DEFAULT_SIZE = 64
CITATION = (
    "MM-WHS 2017 (Zhuang & Shen, Medical Image Analysis 2016; Zhuang et al. 2019), a preprocessed 0..5-label release"
)
SOURCE = (
    "a third-party preprocessed MM-WHS 2017 release with labels 0..5 and an sdf per case (the PlaneCycle "
    "authors do not name it; the original challenge files label 7 structures and do not fit)"
)


def _about(modality: str, folder: Path | str) -> str:
    splits = ", ".join(f"{folder}/{name}/" for name in FOLDERS.values())
    return (
        f"mmwhs-{modality.lower()} expects the folders {splits} each holding case triplets <case>image.nii.gz, "
        f"<case>label.nii.gz (integer labels 0..5) and <case>sdf.nii.gz; the data comes from {SOURCE}. The "
        f"default folder is <data root>/mmwhs/{modality} (--data-root or LIFTBENCH_DATA_ROOT); --dataset-opt "
        "root=DIR points at another one."
    )


def crop_or_pad(array: np.ndarray, size: int) -> np.ndarray:
    """Centre crop or zero-pad each axis to ``size``, as torchio's ``CropOrPad`` does: a difference of n voxels
    is split ceil(n/2) before and floor(n/2) after, so an odd difference takes the extra voxel at the start."""
    out = np.zeros((size,) * array.ndim, dtype=array.dtype)
    source, target = [], []
    for n in array.shape:
        diff = abs(size - n)
        start = -(-diff // 2)  # ceil
        if n >= size:  # crop
            source.append(slice(start, start + size))
            target.append(slice(0, size))
        else:  # pad
            source.append(slice(0, n))
            target.append(slice(start, start + n))
    out[tuple(target)] = array[tuple(source)]
    return out


def window(array: np.ndarray, modality: str) -> np.ndarray:
    """Clamp to the modality's window and rescale it to [0, 1] (float32, torchio's Clamp + RescaleIntensity)."""
    low, high = WINDOWS[modality]
    out = np.clip(array.astype(np.float32), low, high)
    out -= np.float32(low)
    out /= np.float32(high - low)
    return out


def _read_nifti(path: Path, modality: str, folder: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    try:
        image = nib.load(path)
        data = np.asanyarray(image.dataobj)
    except (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile, ImageFileError) as exc:
        raise UsageError(
            f"{path} is not a readable NIfTI file ({type(exc).__name__}: {exc}). {_about(modality, folder)}"
        ) from None
    if data.ndim != 3:
        raise UsageError(f"{path} holds a {data.ndim}-D array {data.shape}, expected 3-D. {_about(modality, folder)}")
    return image, data


def _labels(data: np.ndarray, path: Path, modality: str, folder: Path) -> np.ndarray:
    values = np.unique(data)
    bad = values[(values != np.round(values)) | (values < 0) | (values >= len(MASK_CLASSES))]
    if len(bad):
        shown = ", ".join(f"{v:g}" for v in values[:12]) + (", ..." if len(values) > 12 else "")
        raise UsageError(
            f"{path} holds label values {shown}; labels must be integers 0..{len(MASK_CLASSES) - 1} "
            f"(the original MM-WHS values 205..850 mean the wrong release). {_about(modality, folder)}"
        )
    return data.astype(np.uint8)


def _cases(split_folder: Path, modality: str, folder: Path) -> list[tuple[Path, Path]]:
    """(image, label) paths of a split folder's cases, sorted; each must have its label and sdf."""
    if not split_folder.is_dir():
        raise MissingFileError(f"the folder {split_folder} does not exist. {_about(modality, folder)}")
    images = sorted(split_folder.glob(f"*{SUFFIXES[0]}"))
    if not images:
        raise MissingFileError(f"the folder {split_folder} holds no *{SUFFIXES[0]} file. {_about(modality, folder)}")
    cases = []
    for image in images:
        case = image.name[: -len(SUFFIXES[0])]
        label, sdf = (split_folder / f"{case}{suffix}" for suffix in SUFFIXES[1:])
        for path in (label, sdf):
            if not path.is_file():
                raise MissingFileError(f"{path} (the partner of {image.name}) is missing. {_about(modality, folder)}")
        cases.append((image, label))
    return cases


def _read_split(split_folder: Path, modality: str, folder: Path, size: int, axis: int) -> tuple[VolumeSplit, set]:
    """The split's volumes and masks, and the set of voxel spacings (along D, H, W) of its cases."""
    volumes, masks, spacings, ids = [], [], set(), []
    for image_path, label_path in _cases(split_folder, modality, folder):
        ids.append(image_path.name.removesuffix("image.nii.gz"))
        image, data = _read_nifti(image_path, modality, folder)
        _, label = _read_nifti(label_path, modality, folder)
        if label.shape != data.shape:
            raise UsageError(
                f"{label_path} has shape {label.shape} but {image_path.name} has {data.shape}. "
                f"{_about(modality, folder)}"
            )
        label = _labels(label, label_path, modality, folder)
        volumes.append(np.moveaxis(crop_or_pad(window(data, modality), size), axis, 0))
        masks.append(np.moveaxis(crop_or_pad(label, size), axis, 0))
        zooms = [float(z) for z in image.header.get_zooms()[:3]]
        spacings.add(tuple(zooms[a] for a in (axis, *(a for a in range(3) if a != axis))))
    split = VolumeSplit(np.stack(volumes)[:, None], np.zeros(len(volumes)), np.stack(masks), ids=ids)
    return split, spacings


def load(
    size: int = DEFAULT_SIZE,
    data_root: str | os.PathLike | None = None,
    modality: str = "CT",
    slice_axis: int = 0,
    root: str | None = None,
    **options,
) -> VolumeDataset:
    """Read ``<data root>/mmwhs/<modality>/{training_set,testing_set}`` (or ``root``/...): train and test by
    folder, no validation split, volumes float32 in [0, 1] cropped or padded to ``size``³."""
    modality = str(modality).upper()
    name = f"mmwhs-{modality.lower()}"
    if modality not in WINDOWS:
        raise UsageError(f"mmwhs modality must be CT or MRI, got {modality!r}")
    if options:
        raise UsageError(f"dataset {name!r} got unknown option(s) {sorted(options)}; it accepts slice_axis, root")
    if int(size) < 16:
        raise UsageError(f"{name} size must be >= 16 (one 16-pixel patch per slice side), got {size}")
    if int(slice_axis) not in (0, 1, 2):
        raise UsageError(f"{name} slice_axis must be 0, 1 or 2 (a NIfTI array axis), got {slice_axis}")
    if root:
        folder = Path(root).expanduser().resolve()
    else:
        folder = dataset_folder(data_root, f"mmwhs/{modality}", _about(modality, f"<data root>/mmwhs/{modality}"))
    splits, spacings = {}, {}
    for split, sub in FOLDERS.items():
        splits[split], spacings[split] = _read_split(folder / sub, modality, folder, int(size), int(slice_axis))
    empty = (0, *splits["train"].masks.shape[1:])
    splits["val"] = VolumeSplit(np.zeros((0, 1, *empty[1:]), np.float32), np.zeros(0), np.zeros(empty, np.uint8))
    # One spacing for the augmentation when the training cases share it; 1 mm otherwise (recorded in info).
    spacing = next(iter(spacings["train"])) if len(spacings["train"]) == 1 else (1.0, 1.0, 1.0)
    return VolumeDataset(
        name=name,
        size=int(size),
        task="segmentation",
        num_classes=len(MASK_CLASSES),
        splits=splits,
        info={
            "citation": CITATION,
            "folder": str(folder),
            "slice_axis": str(int(slice_axis)),
            "augment_spacing_mm": "x".join(f"{s:g}" for s in spacing),
        },
        mask_classes=MASK_CLASSES,
        augment=functools.partial(augment, spacing=spacing),
    )
