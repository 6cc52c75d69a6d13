"""The six MedMNIST 3D datasets, loaded through the ``medmnist`` package's own classes and files.

Why through ``medmnist``: its classes decide the file name (``{flag}.npz`` at size 28,
``{flag}_64.npz`` at 64), the download URL and MD5, so a file a user downloaded by hand, by
``medmnist``'s own tools or by ``--download`` is found in the same place.

One quirk is worked around: ``MedMNIST.__len__`` asserts that a split holds the official number of
samples (``INFO[flag]["n_samples"]``). The constructor validates the root, locates the file and reads
the split's arrays into ``.imgs``/``.labels``; we take those arrays and never call ``len()`` (nor
``repr``/truthiness, which call it) on the medmnist object. Real files pass the assertion anyway; the
tiny files the tests write (``tests/helpers/medmnist_files.py``) would not, and tests must use this code path.

Volumes stay uint8 ``(N, 1, D, H, W)`` (a float copy of OrganMNIST3D at 64³ would be ~4 GB);
:func:`liftbench.datasets.volumes.to_unit` divides by 255 per batch, as ``MedMNIST3D.__getitem__`` does.
"""

from __future__ import annotations

import functools
import os
import zipfile
import zlib
from pathlib import Path

import medmnist
import medmnist.info
import numpy as np
from liftbench_plugins.datasets import MEDMNIST3D

from liftbench.datasets.volumes import SPLITS, VolumeDataset, VolumeSplit
from liftbench.errors import MissingFileError, UsageError

SIZES = (28, 64)
ENV_ROOT = "LIFTBENCH_DATA_ROOT"
CITATION = "MedMNIST v2 (Yang et al., Scientific Data 2023)"
_NAMES = {flag: name for name, (flag, _) in MEDMNIST3D.items()}  # flag -> liftbench dataset name


def size_flag(size: int) -> str:
    """medmnist's file-name suffix: blank for 28, ``_64`` for 64 (``MedMNIST.__init__``)."""
    return "" if size == 28 else f"_{size}"


def file_name(flag: str, size: int) -> str:
    """The npz file medmnist reads for ``flag`` at ``size``, e.g. ``organmnist3d_64.npz``."""
    return f"{flag}{size_flag(size)}.npz"


def default_root() -> Path:
    """``LIFTBENCH_DATA_ROOT`` if set, else medmnist's own default (``~/.medmnist``)."""
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).expanduser()
    return Path(medmnist.info.DEFAULT_ROOT or Path.home() / ".medmnist")


def _info(flag: str) -> dict:
    info = medmnist.INFO.get(flag)
    if info is None or not issubclass(getattr(medmnist, info["python_class"]), medmnist.dataset.MedMNIST3D):
        flags = sorted(f for f, i in medmnist.INFO.items() if f.endswith("3d"))
        raise UsageError(f"unknown MedMNIST 3D flag {flag!r}; valid flags: {', '.join(flags)}")
    return info


def _release(flag: str, size: int, root: Path, info: dict, *, replace: bool = False) -> str:
    """Where the file comes from: the sentences every message about it ends with (``replace``: for a file
    that is there, which medmnist would not download over)."""
    name = file_name(flag, size)
    fetch = "delete it and let medmnist fetch it" if replace else "let medmnist fetch it"
    return (
        f"{'Replace it: download' if replace else 'Download'} it from {info['url' + size_flag(size)]} "
        f"(MD5 {info['MD5' + size_flag(size)]}) and put it in {root} (as {root / name}), or {fetch} by passing "
        f"download=True. To use another folder, pass --data-root or set {ENV_ROOT}."
    )


def _missing_message(flag: str, size: int, root: Path, info: dict) -> str:
    return (
        f"MedMNIST dataset {flag} ({info['python_class']}) at size {size} is not on disk: file {file_name(flag, size)} "
        f"was not found in the folder {root}. " + _release(flag, size, root, info)
    )


def _bad_file(flag: str, size: int, root: Path, problem: str) -> UsageError:
    """A file that is there but is not the release: a one-paragraph error naming it and what is wrong."""
    info = _info(flag)
    path = root / file_name(flag, size)
    return UsageError(
        f"{path} is not a usable MedMNIST file: {problem}. It should be the {flag} ({info['python_class']}) release "
        f"at size {size}: arrays {{train,val,test}}_images uint8 (N, {size}, {size}, {size}) and "
        f"{{train,val,test}}_labels (N, 1) of integers 0..{len(info['label']) - 1}. "
        + _release(flag, size, root, info, replace=True)
    )


def load(
    size: int,
    data_root: str | os.PathLike | None = None,
    flag: str = "organmnist3d",
    download: bool | None = None,
    **options,
) -> VolumeDataset:
    """Load MedMNIST 3D dataset ``flag`` at ``size`` (28 or 64) from ``data_root``.

    ``data_root`` defaults to ``LIFTBENCH_DATA_ROOT``, then medmnist's default root. A missing file
    raises :class:`MissingFileError` saying what to download and where to put it; only
    ``download=True`` fetches it (through medmnist). Results are cached in-process per
    (flag, size, root, file stamp), so a grid over backbones and strategies reads each file once;
    treat the returned arrays as read-only.
    """
    if options:
        raise UsageError(
            f"MedMNIST dataset {flag!r} got unknown option(s) {sorted(options)}; it accepts flag, download"
        )
    info = _info(flag)
    if size not in SIZES:
        raise UsageError(
            f"MedMNIST 3D dataset {flag!r} has no size {size!r}; valid sizes: {', '.join(map(str, SIZES))}"
        )
    root = (Path(data_root).expanduser() if data_root else default_root()).resolve()
    path = root / file_name(flag, size)
    if download:
        root.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            try:  # medmnist downloads (torchvision) and checks the MD5
                _read_split(flag, size, str(root), "train", download=True)
            except RuntimeError as exc:
                cause = exc.__context__ or exc
                raise MissingFileError(
                    f"medmnist's download failed ({type(cause).__name__}: {' '.join(str(cause).split())}). "
                    + _missing_message(flag, size, root, info)
                ) from exc
    if not path.is_file():
        raise MissingFileError(_missing_message(flag, size, root, info))
    stat = path.stat()
    dataset = _load_cached(flag, int(size), str(root), stat.st_mtime_ns, stat.st_size)
    return dataset


def _read_split(flag: str, size: int, root: str, split: str, download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One split's (images, labels) as medmnist's class reads them (no ``len()``: see module doc)."""
    cls = getattr(medmnist, medmnist.INFO[flag]["python_class"])
    ds = cls(split=split, size=size, root=root, download=download)
    return ds.imgs, ds.labels


def _read_checked(flag: str, size: int, root: str, split: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_read_split`, with a file that cannot be read or does not hold this split at this size as a
    :class:`UsageError` naming it (a truncated download is a ``BadZipFile`` deep inside numpy otherwise)."""
    try:
        images, labels = _read_split(flag, size, root, split)
        images, labels = np.asarray(images), np.asarray(labels)
    except KeyError:
        found = _keys(Path(root) / file_name(flag, size))
        missing = [key for key in (f"{split}_images", f"{split}_labels") if key not in found]
        raise _bad_file(flag, size, Path(root), f"it has no array {' or '.join(map(repr, missing))} "
                        f"(found: {', '.join(sorted(found)) or 'none'})") from None  # fmt: skip
    except (OSError, ValueError, EOFError, IndexError, TypeError, zipfile.BadZipFile, zlib.error) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise _bad_file(flag, size, Path(root), f"it cannot be read as an npz archive ({type(exc).__name__}: {detail})") from None
    if images.dtype != np.uint8 or images.shape[1:] != (size,) * 3 or images.ndim != 4:
        raise _bad_file(flag, size, Path(root), f"{split}_images is {images.dtype} {images.shape}, not uint8 (N, {size}, {size}, {size})")
    if not len(images):
        raise _bad_file(flag, size, Path(root), f"the {split} split is empty ({split}_images holds 0 volumes)")
    if labels.dtype.kind not in "biu" or labels.size != len(images) or labels.ndim not in (1, 2):
        raise _bad_file(flag, size, Path(root), f"{split}_labels is {labels.dtype} {labels.shape}, not {len(images)} integer labels (N, 1)")
    labels = labels.reshape(-1).astype(np.int64)
    outside = np.unique(labels[(labels < 0) | (labels >= classes)])
    if len(outside):
        raise _bad_file(flag, size, Path(root), f"{split}_labels holds {', '.join(map(str, outside[:5]))}, outside 0..{classes - 1}")
    return images, labels


def _keys(path: Path) -> list[str]:
    """The arrays an npz file holds (none if it cannot even list them)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return list(npz.files)
    except Exception:  # only informs the message about the key medmnist did not find
        return []


@functools.lru_cache(maxsize=16)
def _load_cached(flag: str, size: int, root: str, _mtime_ns: int, _nbytes: int) -> VolumeDataset:
    """Read all splits. The file stamp in the key makes a replaced file be read again."""
    info = _info(flag)
    splits = {}
    for split in SPLITS:
        images, labels = _read_checked(flag, size, root, split, len(info["label"]))
        splits[split] = VolumeSplit(volumes=images[:, None], labels=labels)
    label_names = tuple(info["label"][str(k)] for k in range(len(info["label"])))
    return VolumeDataset(
        name=_NAMES.get(flag, flag),
        size=size,
        task=info["task"],
        num_classes=len(label_names),
        splits=splits,
        label_names=label_names,
        info={"citation": CITATION, "flag": flag, "file": str(Path(root) / file_name(flag, size))},
    )
