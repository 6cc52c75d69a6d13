"""Tiny segmentation releases in their exact on-disk layouts, so tests go through the real loaders.

LIDC (the ACSConv release): ``lidc/train_test_split.csv`` with columns ``train`` and ``test`` of file names,
the shorter column padded with empty cells (pandas reads them as NaN), and ``lidc/nodule/<name>.npz`` holding
``voxel`` uint8 (D, H, W) and up to four boolean masks ``answer1``..``answer4``, any of which may be absent.

MMWHS (the preprocessed release the PlaneCycle authors use): ``mmwhs/<CT|MRI>/{training_set,testing_set}/``
of ``<case>image.nii.gz``, ``<case>label.nii.gz`` (integers 0..5) and ``<case>sdf.nii.gz`` triplets.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

LIDC_SHAPE = (12, 16, 16)
MMWHS_SHAPE = (20, 18, 22)
# Which answer keys each generated patch holds, in turn: 1 to 4 readers, with gaps.
ANSWERS = tuple(f"answer{k}" for k in range(1, 5))
ANSWER_SETS = (("answer1",), ("answer1", "answer3"), ("answer2", "answer3", "answer4"), ANSWERS, ())


def write_patch(path: Path, voxel: np.ndarray, answers: dict[str, np.ndarray]) -> Path:
    """One ``.npz`` patch: ``voxel`` plus the given ``answerK`` masks (stored as bool, as in the release)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, voxel=voxel.astype(np.uint8), **{k: v.astype(bool) for k, v in answers.items()})
    return path


def write_split_csv(folder: Path, train: list[str], test: list[str]) -> Path:
    """``train_test_split.csv`` with the shorter column NaN-padded, as the release's file is."""
    n = max(len(train), len(test))
    table = pd.DataFrame({"train": train + [np.nan] * (n - len(train)), "test": test + [np.nan] * (n - len(test))})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train_test_split.csv"
    table.to_csv(path, index=False)
    return path


def lidc_patch(rng: np.random.Generator, shape=LIDC_SHAPE, keys=ANSWERS) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A bright nodule-like ball in noise, and one slightly different outline per reader in ``keys``."""
    d, h, w = shape
    z, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
    centre = np.array(shape) / 2 + rng.uniform(-1, 1, 3)
    dist = np.sqrt(
        ((z - centre[0]) / (d / 4)) ** 2 + ((y - centre[1]) / (h / 4)) ** 2 + ((x - centre[2]) / (w / 4)) ** 2
    )
    voxel = np.clip(40 + 150 * (dist < 1) + rng.normal(0, 15, shape), 0, 255).astype(np.uint8)
    answers = {key: dist < rng.uniform(0.7, 1.3) for key in keys}
    return voxel, answers


def write_lidc(root: str | Path, n_train: int = 5, n_test: int = 3, shape=LIDC_SHAPE, seed: int = 0) -> Path:
    """A release of ``n_train`` + ``n_test`` patches under ``root/lidc``; returns that folder.

    Patches cycle through :data:`ANSWER_SETS` (1 to 4 readers with missing keys, and one with none).
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "lidc"
    names = [f"LIDC-IDRI-{i:04d}_nodule{i % 3}.npz" for i in range(n_train + n_test)]
    for i, name in enumerate(names):
        voxel, answers = lidc_patch(rng, shape, ANSWER_SETS[i % len(ANSWER_SETS)])
        write_patch(folder / "nodule" / name, voxel, answers)
    write_split_csv(folder, names[:n_train], names[n_train:])
    return folder


def write_nifti(path: Path, data: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), path)
    return path


def mmwhs_case(rng: np.random.Generator, modality: str, shape=MMWHS_SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """(image, label): nested boxes labelled 1..5 in background 0, intensities spanning past the window.

    CT: int16 Hounsfield-like values from -1000 to 1500 (the window is -250..800); MRI: float32 0..1500
    (window 0..1000)."""
    label = np.zeros(shape, np.uint8)
    for k in range(1, 6):
        lo = [int(k * s / 14) + int(rng.integers(0, 2)) for s in shape]
        hi = [s - int(k * s / 14) - int(rng.integers(0, 2)) for s in shape]
        label[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = k
    if modality == "CT":
        image = np.array([-1000, -200, 50, 300, 600, 900, 1500])[label] + rng.normal(0, 40, shape)
        return image.astype(np.int16), label
    image = np.array([20.0, 200, 400, 600, 900, 1200, 1500])[label] + rng.normal(0, 30, shape)
    return np.clip(image, 0, None).astype(np.float32), label


def write_mmwhs(
    root: str | Path,
    modality: str = "CT",
    counts: tuple[int, int] = (3, 2),
    shape=MMWHS_SHAPE,
    spacing=(1.0, 1.0, 1.0),
    seed: int = 0,
) -> Path:
    """``counts`` (train, test) cases under ``root/mmwhs/<modality>``; returns that folder."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "mmwhs" / modality
    for split, n in zip(("training_set", "testing_set"), counts, strict=True):
        for i in range(n):
            prefix = folder / split / f"{modality.lower()}_{split[:-4]}_{1001 + i}_"
            image, label = mmwhs_case(rng, modality, shape)
            write_nifti(Path(f"{prefix}image.nii.gz"), image, spacing)
            write_nifti(Path(f"{prefix}label.nii.gz"), label, spacing)
            write_nifti(Path(f"{prefix}sdf.nii.gz"), rng.normal(0, 1, shape).astype(np.float32), spacing)
    return folder
