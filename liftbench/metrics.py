"""AUC and ACC exactly as MedMNIST's ``Evaluator`` computes them, so our numbers compare with its tables.

``medmnist.evaluator.getAUC``/``getACC`` on class scores:

- binary-class: the positive class's score is the last column (``probs[:, -1]``); AUC is the ROC AUC of
  that score, ACC thresholds it at ``> 0.5``.
- multi-class: AUC is the unweighted mean of the K one-vs-rest ROC AUCs, ACC is argmax accuracy.

We compute these with torchmetrics, which must be given probabilities: its AUROC/accuracy treat any
input outside [0, 1] as logits and apply sigmoid/softmax themselves, which would silently change the
binary threshold semantics. Use :func:`probabilities_from_logits` on model outputs first.

Where medmnist (via sklearn) raises, i.e. a class has no positives or no negatives among the labels
(a tiny split, a subsample), AUC is undefined and we return NaN instead of crashing a run; ACC is still
reported. torchmetrics' own "macro" would quietly average over the remaining classes, so we don't use it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


# Every metric a result row may carry, in the leaderboard's order, with its printed name: the one list.
METRIC_NAMES = {"auc": "AUC", "acc": "ACC", "dice": "Dice", "featdice": "FeatDice"}


def _tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    import torch  # in the functions: the leaderboard reads METRIC_NAMES without loading torch

    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu()


def probabilities_from_logits(logits: np.ndarray | torch.Tensor, task: str) -> np.ndarray | torch.Tensor:
    """Class probabilities from model outputs ``(N, K)``: softmax over classes, for both tasks.

    A binary head with two logits gets a softmax too (column -1 is then P(positive), what MedMNIST
    scores); a single-logit binary output ``(N,)``/``(N, 1)`` gets a sigmoid. Returns the input's type
    (numpy in, numpy out) and floating dtype.
    """
    import torch

    from liftbench.datasets.volumes import TASKS

    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    x = _tensor(logits)
    x = x if x.is_floating_point() else x.double()
    if x.ndim == 1 or x.shape[-1] == 1:
        if task != "binary-class":
            raise ValueError(f"a single logit per sample only makes sense for binary-class, not {task}")
        probs = torch.sigmoid(x)
    else:
        probs = torch.softmax(x, dim=-1)
    return probs if isinstance(logits, torch.Tensor) else probs.numpy()


def classification_metrics(
    probs: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, task: str
) -> dict[str, float]:
    """``{"auc": ..., "acc": ...}`` as fractions in [0, 1], matching MedMNIST's ``getAUC``/``getACC``.

    ``probs`` are class probabilities ``(N, K)`` (binary: ``(N, 2)``, or ``(N,)``/``(N, 1)`` holding
    P(positive)); ``labels`` are integer classes ``(N,)`` or ``(N, 1)``. AUC is NaN when undefined (see
    module docstring).
    """
    import torch
    from torchmetrics.functional.classification import (
        binary_accuracy,
        binary_auroc,
        multiclass_accuracy,
        multiclass_auroc,
    )

    from liftbench.datasets.volumes import TASKS

    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    p = _tensor(probs).double()
    y = _tensor(labels).reshape(-1).long()
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"{p.shape[0]} predictions but {y.shape[0]} labels")
    if p.numel() and (p.min() < 0 or p.max() > 1):
        raise ValueError("classification_metrics takes probabilities in [0, 1]; apply probabilities_from_logits")
    num_classes = 2 if task == "binary-class" else (p.shape[1] if p.ndim == 2 else 0)
    if y.numel() and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1} for {task} with these probabilities")
    if task == "binary-class":
        score = p[:, -1] if p.ndim == 2 else p
        positives = int((y == 1).sum())
        defined = 0 < positives < len(y)
        auc = float(binary_auroc(score, y)) if defined else math.nan
        acc = float(binary_accuracy(score, y, threshold=0.5))
    else:
        if p.ndim != 2:
            raise ValueError(f"multi-class needs (N, K) probabilities, got shape {tuple(p.shape)}")
        k = p.shape[1]
        counts = torch.bincount(y, minlength=k)
        defined = bool(((counts > 0) & (counts < len(y))).all())
        auc = float(multiclass_auroc(p, y, num_classes=k, average="none").mean()) if defined else math.nan
        acc = float(multiclass_accuracy(p, y, num_classes=k, average="micro"))
    return {"auc": auc, "acc": acc}
