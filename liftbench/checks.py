"""What a plugin hands over is checked where it enters, and a bad one is an error naming the plugin.

Why at the boundary: a dataset plugin that returns 24³ volumes for ``--size 32``, labels outside the
classes it declares, or 45 test volumes when ``n_test=6`` was asked, or a checkpoint with NaN in one
layer, does not crash anything. The run trains, records ``input_size=32`` or AUC 0.5, and the row looks
like any other. So every dataset passes through :func:`check_dataset` and every backbone through
:func:`check_weights` before a protocol sees it, and what a run computes from them (features, a training
loss) through :func:`check_finite`.

Whose fault it is decides the error:

- a dataset whose return breaks :class:`liftbench.datasets.volumes.VolumeDataset`'s contract is the plugin's:
  :class:`~liftbench.errors.PluginError` (exit 2), naming the dataset and the plugin that registered it.
  A plugin that reads the user's files checks them itself and raises a
  :class:`~liftbench.errors.UsageError` naming the file (as the MedMNIST, LIDC and MMWHS loaders do);
  whatever still reaches this check malformed is the plugin's to fix;
- non-finite weights come from the user's checkpoint, the hub or the shipped file:
  :class:`~liftbench.errors.UsageError` naming the tensors and the weights source (random weights:
  :class:`~liftbench.errors.PluginError`, the architecture's own initialisation is at fault);
- non-finite features or losses are a run's outcome (a learning rate too high, bf16 overflow):
  ``FloatingPointError``, which the runner records as a failed row with this message.

Planners call :func:`load_dataset` at plan time, the run context and cost estimates call it when they load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from liftbench.datasets.volumes import SPLITS, DatasetContractError, VolumeDataset
from liftbench.errors import PluginError, UsageError

COUNT_OPTIONS = {"train": "n_train", "val": "n_val", "test": "n_test"}  # the convention for split sizes


def _who(entry: Any) -> str:
    origin = getattr(entry, "origin", "") or "(unknown plugin)"
    return f"dataset {getattr(entry, 'name', entry)!r} from plugin {origin}"


def load_dataset(entry: Any, *, size: int, data_root: str | None = None, options: Mapping[str, Any] | None = None) -> VolumeDataset:
    """Call dataset ``entry``'s ``load`` as a run does (its registered options, then ``options``) and return
    the dataset after :func:`check_dataset`. A :class:`~liftbench.datasets.volumes.VolumeSplit` the plugin built against
    its contract (a ``(N, D, H, W)`` volume array) is a :class:`PluginError` naming the plugin."""
    opts = {**entry.options, **(options or {})}
    try:
        dataset = entry.load()(size=size, data_root=data_root, **opts)
    except DatasetContractError as exc:
        raise PluginError(f"{_who(entry)} built a malformed dataset at size {size}: {exc}") from None
    check_dataset(dataset, entry=entry, size=size, options=opts)
    return dataset


def _expected_shape(dataset: VolumeDataset, size: int) -> str:
    if dataset.task == "segmentation":
        return f"(N, 1, D, {size}, {size}), or any in-plane size with inplane['network'] = {size}"
    return f"(N, 1, {size}, {size}, {size})"


def _shape_ok(dataset: VolumeDataset, shape: tuple[int, ...], size: int) -> bool:
    """The run's size, per task. Classification sets (MedMNIST, synthetic) store ``size``³ volumes. A
    segmentation set may store its native size, since each batch is resized in-plane to
    ``inplane["network"]`` (LIDC keeps its patches and sets it to ``size``); without that key the network
    sees the stored slices, so they must be ``size`` × ``size`` (MMWHS crops to ``size``³); depth is the
    set's own either way."""
    depth, height, width = shape
    if dataset.task != "segmentation":
        return shape == (size, size, size)
    network = dataset.inplane.get("network")
    return network == size if network is not None else (height, width) == (size, size)


def _range_problem(volumes: np.ndarray) -> str:
    """Why ``volumes`` are not uint8 or finite floats in [0, 1] (the documented range); '' when they are."""
    if volumes.dtype == np.uint8:
        return ""
    if volumes.dtype.kind != "f":
        return f"volumes are {volumes.dtype}; they must be uint8 (0..255) or float in [0, 1]"
    if not volumes.size:
        return ""
    finite = np.isfinite(volumes)
    if not finite.all():
        return f"{int((~finite).sum())} volume value(s) are not finite (NaN or inf)"
    low, high = float(volumes.min()), float(volumes.max())
    if low < 0 or high > 1:
        return f"float volumes hold values in [{low:g}, {high:g}]; they must lie in [0, 1] (or be uint8 0..255)"
    return ""


def _split_problems(dataset: VolumeDataset, name: str, size: int) -> list[str]:
    split = dataset.splits[name]
    volumes, problems = split.volumes, []
    if not isinstance(volumes, np.ndarray) or volumes.ndim != 5 or volumes.shape[1] != 1:
        return [f"{name} volumes must be a numpy array (N, 1, D, H, W), got {getattr(volumes, 'shape', type(volumes).__name__)}"]
    if not len(split) and (name != "val" or dataset.task != "segmentation"):
        problems.append(f"the {name} split is empty (only a segmentation set may leave val empty)")
    if not _shape_ok(dataset, tuple(volumes.shape[2:]), size):
        problems.append(f"{name} volumes have shape {tuple(volumes.shape)}; at --size {size} a {dataset.task} dataset "
                        f"hands over {_expected_shape(dataset, size)}")  # fmt: skip
    if problem := _range_problem(volumes):
        problems.append(f"{name}: {problem}")
    labels = np.asarray(split.labels)
    if len(labels) != len(volumes):
        problems.append(f"{name} has {len(volumes)} volumes but {len(labels)} labels")
    elif labels.size and (labels.min() < 0 or labels.max() >= dataset.num_classes):
        bad = np.unique(labels[(labels < 0) | (labels >= dataset.num_classes)])[:5].tolist()
        problems.append(f"{name} labels {bad} lie outside 0..{dataset.num_classes - 1} (num_classes {dataset.num_classes})")
    if split.masks is not None:
        problems += _mask_problems(dataset, name, volumes.shape)
    return problems


def _mask_problems(dataset: VolumeDataset, name: str, shape: tuple[int, ...]) -> list[str]:
    masks = np.asarray(dataset.splits[name].masks)
    expected = (shape[0], *shape[2:])
    if masks.shape != expected:
        return [f"{name} masks have shape {masks.shape}; its volumes {shape} need masks {expected}"]
    if masks.dtype.kind not in "biu":
        return [f"{name} masks are {masks.dtype}; they must hold integer class ids"]
    classes = len(dataset.mask_names)
    if masks.size and (int(masks.min()) < 0 or int(masks.max()) >= classes):
        return [f"{name} masks hold values in {int(masks.min())}..{int(masks.max())}; the mask classes "
                f"{', '.join(dataset.mask_names)} allow 0..{classes - 1}"]  # fmt: skip
    return []


def _dataset_problems(dataset: VolumeDataset, entry: Any, size: int, options: Mapping[str, Any]) -> list[str]:
    problems = []
    if dataset.size != size:
        problems.append(f"its size is {dataset.size}, but --size {size} was asked for")
    if dataset.task == "binary-class" and dataset.num_classes != 2:
        problems.append(f"a binary-class dataset has 2 classes, not num_classes={dataset.num_classes}")
    elif dataset.num_classes < 2 and dataset.task != "segmentation":
        problems.append(f"a {dataset.task} dataset needs num_classes >= 2, got {dataset.num_classes}")
    if dataset.label_names and len(dataset.label_names) != dataset.num_classes:
        problems.append(f"{len(dataset.label_names)} label_names for num_classes={dataset.num_classes}")
    if getattr(entry, "has_masks", False) and not dataset.has_masks:
        problems.append("it is registered with has_masks=True but not every split holds masks")
    for split in SPLITS:
        problems += _split_problems(dataset, split, size)
        asked = options.get(COUNT_OPTIONS[split])
        if asked is not None and len(dataset.splits[split]) != int(asked):
            problems.append(f"{COUNT_OPTIONS[split]}={asked} was asked for, but the {split} split holds "
                            f"{len(dataset.splits[split])} volumes (the option is declared but not honoured)")  # fmt: skip
    return problems


def check_dataset(dataset: Any, *, entry: Any, size: int, options: Mapping[str, Any] | None = None) -> VolumeDataset:
    """``dataset`` as the plugin of ``entry`` returned it for ``size`` and dataset ``options``, checked
    against :class:`~liftbench.datasets.volumes.VolumeDataset`'s contract; a :class:`PluginError` lists every problem.

    Checked: the return is a ``VolumeDataset`` of the asked size; each split's volumes are ``(N, 1, D, H, W)``
    at the run's size (see :func:`_shape_ok`: ``size``³ for classification, the in-plane network size for
    segmentation), uint8 or finite floats in [0, 1]; train and test are non-empty (val too, except for
    segmentation, whose protocols carve one from train); labels are integers in ``0..num_classes-1``, one
    per volume; masks, where present (every split if the entry declares ``has_masks``), have the volumes'
    shape without the channel and values in ``0..len(mask_names)-1``. The split-size options ``n_train``,
    ``n_val``, ``n_test``, when set, must equal the split lengths: an option a plugin declares but ignores
    would otherwise be recorded as if it had been used.
    """
    if not isinstance(dataset, VolumeDataset):
        raise PluginError(f"{_who(entry)} returned a {type(dataset).__name__}, not a liftbench.datasets.volumes.VolumeDataset")
    problems = _dataset_problems(dataset, entry, size, options or {})
    if problems:
        raise PluginError(f"{_who(entry)} handed over a dataset that breaks liftbench.datasets.volumes.VolumeDataset's contract "
                          f"at --size {size}: {'; '.join(problems)}")  # fmt: skip
    return dataset


def check_weights(model: torch.nn.Module, source: str, *, backbone: str = "") -> torch.nn.Module:
    """``model`` if every floating tensor of its state dict (parameters and buffers) is finite; otherwise an
    error naming the tensors and the weights ``source`` (``pretrained``, ``random:SEED`` or a file path).
    A NaN in one layer would otherwise give ok rows at chance AUC."""
    bad = []
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not tensor.is_meta and not bool(torch.isfinite(tensor).all()):
            bad.append(f"{name} ({int((~torch.isfinite(tensor)).sum())} of {tensor.numel()} values)")
    if not bad:
        return model
    shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    who = f"backbone {backbone!r}" if backbone else "the backbone"
    message = f"the weights of {who} from {source!r} are not finite (NaN or inf) in {len(bad)} tensor(s): {shown}"
    if source.startswith("random"):
        raise PluginError(f"{message}; its random initialisation is broken")
    raise UsageError(f"{message}. The checkpoint is damaged or was saved from a diverged training run: use another one")


def check_finite(tensor: torch.Tensor, what: str) -> torch.Tensor:
    """``tensor`` if every value is finite, else ``FloatingPointError`` saying what (``what``: "the training
    loss at step 3", "features of volumes 4..7") and how many values: the run fails with that reason."""
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        count = int((~finite).sum())
        shown = f" ({tensor.item()})" if tensor.numel() == 1 else f" ({count} of {tensor.numel()} values)"
        raise FloatingPointError(f"{what} is not finite{shown}; a learning rate too high, bf16 overflow or "
                                 "non-finite input can cause this")  # fmt: skip
    return tensor
