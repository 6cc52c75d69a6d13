"""Dice as the paper reports it: MONAI ``DiceMetric(include_background=False)`` semantics, per volume.

Why these semantics and not a plain Dice: the authors score the whole test set with MONAI's default
``ignore_empty=True``. A (volume, class) whose ground truth is empty yields NaN and is skipped — it neither
counts as a perfect 1 nor as a 0 — the remaining classes of a volume are averaged, and then the volumes that
have at least one valid class are averaged. Background is never scored. Reproducing this exactly is what
makes our Dice comparable with Table 3.

We keep the per-volume matrix (rather than only MONAI's batch mean) so results can be inspected and
bootstrapped, and compute it chunk by chunk so that one-hot encodings of hundreds of volumes never sit in
memory at once.

LIDC is binary: the network gives one probability channel, and the authors score ``prob > thr`` for 21
thresholds and report the best (chosen on the test set). :func:`threshold_sweep` computes foreground Dice for
every threshold at once from per-threshold counts — the same numbers MONAI gives, at a fraction of the cost.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from monai.metrics import DiceMetric

LIDC_THRESHOLDS: tuple[float, ...] = (0.001, 0.01) + tuple(round(float(t), 2) for t in np.arange(0.05, 0.96, 0.05))

_CHUNK_VOXELS = 2**24  # voxels per chunk of volumes: bounds the one-hot / count tensors


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def _chunks(n: int, voxels_per_volume: int):
    step = max(1, _CHUNK_VOXELS // max(1, voxels_per_volume))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels.long(), num_classes).movedim(-1, 1)


def per_volume_dice(pred: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor, num_classes: int) -> np.ndarray:
    """Dice of each (volume, foreground class): (N, K−1), NaN where that class is absent from the truth.

    ``pred`` and ``truth`` are integer label maps (N, D, H, W) with values in 0..K−1; class 0 is background.
    A binary mask is K = 2.
    """
    if num_classes < 2:
        raise ValueError("num_classes counts background; a binary mask is num_classes=2")
    pred, truth = _as_tensor(pred), _as_tensor(truth)
    if pred.shape != truth.shape or pred.ndim < 2:
        raise ValueError(f"pred {tuple(pred.shape)} and truth {tuple(truth.shape)} must both be (N, ...spatial)")
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    rows = []
    for part in _chunks(pred.shape[0], pred[0].numel() * num_classes):
        rows.append(metric(_one_hot(pred[part], num_classes), _one_hot(truth[part], num_classes)).cpu())
        metric.reset()
    return torch.cat(rows).double().numpy()


def mean_dice(per_volume: np.ndarray) -> float:
    """Mean over each volume's valid classes, then over volumes with at least one; NaN if there are none.

    (MONAI's own "mean" reduction returns 0 in the all-empty case; NaN says "nothing to score" honestly.)
    """
    per_volume = np.asarray(per_volume, dtype=float)
    valid = ~np.isnan(per_volume)
    scored = valid.any(axis=1)
    if not scored.any():
        return float("nan")
    per_row = np.where(valid, per_volume, 0.0).sum(axis=1)[scored] / valid.sum(axis=1)[scored]
    return float(per_row.mean())


def threshold_sweep(
    prob: np.ndarray | torch.Tensor,
    truth: np.ndarray | torch.Tensor,
    thresholds: tuple[float, ...] | list[float] = LIDC_THRESHOLDS,
) -> np.ndarray:
    """Foreground Dice of ``prob > thr`` against ``truth``, per volume and threshold: (N, T).

    NaN for volumes whose truth is empty (MONAI's ``ignore_empty``). Instead of thresholding T times, each voxel
    is placed once among the sorted thresholds (``bucketize``: the number of thresholds it exceeds); counting
    voxels per bucket, and per bucket inside the truth, then gives |pred| and |pred ∩ truth| for every threshold
    by a reverse cumulative sum. Thresholds are compared in the probabilities' dtype, as ``prob > thr`` is.
    """
    prob, truth = _as_tensor(prob), _as_tensor(truth)
    if prob.shape != truth.shape or prob.ndim < 2:
        raise ValueError(f"prob {tuple(prob.shape)} and truth {tuple(truth.shape)} must both be (N, ...spatial)")
    if not prob.is_floating_point():
        prob = prob.double()
    thr = torch.as_tensor(thresholds, dtype=prob.dtype, device=prob.device)
    if thr.ndim != 1 or thr.numel() == 0:
        raise ValueError("thresholds must be a non-empty sequence")
    sorted_thr, order = torch.sort(thr)
    n_thr = thr.numel()
    out = []
    for part in _chunks(prob.shape[0], prob[0].numel()):
        p = prob[part].flatten(1)
        t = truth[part].flatten(1).to(device=prob.device) != 0
        n = p.shape[0]
        exceeded = torch.bucketize(p, sorted_thr, right=False)  # #thresholds strictly below each voxel's prob
        exceeded = torch.where(torch.isnan(p), 0, exceeded)  # NaN > t is false for every t, as prob > thr says
        offsets = exceeded + (n_thr + 1) * torch.arange(n, device=p.device).unsqueeze(1)
        per_bucket = torch.bincount(offsets.flatten(), minlength=n * (n_thr + 1)).view(n, n_thr + 1)
        in_truth = torch.bincount(offsets[t], minlength=n * (n_thr + 1)).view(n, n_thr + 1)
        # A voxel in bucket b exceeds thresholds 0..b−1, so |prob > sorted_thr[j]| = Σ_{b > j} count[b].
        pred_sum = per_bucket.flip(1).cumsum(1).flip(1)[:, 1:]
        inter = in_truth.flip(1).cumsum(1).flip(1)[:, 1:]
        truth_sum = t.sum(1, keepdim=True)
        dice = (2.0 * inter.double()) / (pred_sum + truth_sum).double()
        dice = torch.where(truth_sum > 0, dice, torch.full_like(dice, float("nan")))
        out.append(dice[:, torch.argsort(order)].cpu())
    return torch.cat(out).numpy()


def per_volume_frame(scores: np.ndarray, columns, ids=None):
    """Per-volume Dice as stored beside a run: ``index`` (position in the test split), ``volume`` (its name —
    the LIDC patch file, the MMWHS case — where the dataset gives one) and one column per threshold or class."""
    import pandas as pd

    frame = pd.DataFrame(np.asarray(scores, dtype=float).reshape(len(scores), len(columns)), columns=list(columns))
    frame.insert(0, "volume", list(ids) if ids is not None else [""] * len(frame))
    frame.insert(0, "index", np.arange(len(frame)))
    return frame
