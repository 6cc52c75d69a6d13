"""Segmentation losses exactly as the authors' training code weighs and reduces them, over the whole volume.

Why two different losses: the paper's binary task (LIDC nodules, one logit channel) and its multi-class task
(MMWHS, background + 5 structures) use different code paths with different smoothing and reductions, and a
"cleaner" shared formulation would shift the numbers.

* Binary (one channel): BCE-with-logits, averaged over the voxels of each sample and then over the batch, plus a
  soft Dice on the sigmoid with smoothing 1 in numerator and denominator, per sample, averaged over the batch.
  Weights 1 and 1.
* Multi-class: cross-entropy over all K classes (background included, nothing ignored, no class weights) plus
  MONAI's ``DiceLoss`` with softmax over all K channels *before* the background channel is dropped, smoothing
  1e-5, averaged over (sample, foreground class). Weights 0.5 and 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

BINARY_WEIGHTS = (1.0, 1.0)  # (cross-entropy, Dice)
MULTICLASS_WEIGHTS = (0.5, 1.0)
BINARY_DICE_SMOOTH = 1.0


def _binary_target(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if target.ndim == logits.ndim - 1:
        target = target.unsqueeze(1)
    if target.shape != logits.shape:
        raise ValueError(f"binary target of shape {tuple(target.shape)} does not fit logits {tuple(logits.shape)}")
    return target.to(logits.dtype)


def binary_soft_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``1 − (2Σpt + 1)/(Σp + Σt + 1)``, p = sigmoid(logits), sums over each sample."""
    t = _binary_target(logits, target).flatten(1)
    p = torch.sigmoid(logits).flatten(1)
    inter = (p * t).sum(1)
    dice = (2 * inter + BINARY_DICE_SMOOTH) / (p.sum(1) + t.sum(1) + BINARY_DICE_SMOOTH)
    return (1 - dice).mean()


def binary_seg_loss(
    logits: torch.Tensor, target: torch.Tensor, ce_weight: float = 1.0, dice_weight: float = 1.0
) -> torch.Tensor:
    """``ce_weight``·BCE + ``dice_weight``·soft Dice for logits (B, 1, D, H, W) and a {0, 1} target.

    ``target`` is (B, D, H, W) or (B, 1, D, H, W), any dtype.
    """
    if logits.ndim < 3 or logits.shape[1] != 1:
        raise ValueError(f"binary logits must be (B, 1, ...), got {tuple(logits.shape)}")
    t = _binary_target(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits, t, reduction="none").flatten(1).mean(1).mean()
    return ce_weight * bce + dice_weight * binary_soft_dice(logits, t)


def _label_map(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Integer labels (B, D, H, W) from a label map, a (B, 1, ...) label map, or a (B, K, ...) one-hot."""
    if target.ndim == logits.ndim:
        if target.shape[1] == 1:
            target = target[:, 0]
        elif target.shape[1] == logits.shape[1]:
            target = target.argmax(1)  # one-hot, as the datasets hand it out (the authors argmax it too)
        else:
            raise ValueError(f"target of shape {tuple(target.shape)} does not fit logits {tuple(logits.shape)}")
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"target of shape {tuple(target.shape)} does not fit logits {tuple(logits.shape)}")
    return target.long()


def multiclass_dice_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MONAI Dice loss: softmax over all K classes, background dropped afterwards, smoothing 1e-5."""
    one_hot = F.one_hot(labels, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
    return DiceLoss(include_background=False, softmax=True, to_onehot_y=False)(logits, one_hot)


def multiclass_seg_loss(
    logits: torch.Tensor, target: torch.Tensor, ce_weight: float = 0.5, dice_weight: float = 1.0
) -> torch.Tensor:
    """``ce_weight``·cross-entropy + ``dice_weight``·MONAI Dice for logits (B, K, D, H, W).

    ``target`` holds labels in 0..K−1, shaped (B, D, H, W) or (B, 1, D, H, W), or is a (B, K, D, H, W) one-hot.
    """
    labels = _label_map(logits, target)
    ce = F.cross_entropy(logits, labels)
    return ce_weight * ce + dice_weight * multiclass_dice_loss(logits, labels)


def seg_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ce_weight: float | None = None,
    dice_weight: float | None = None,
) -> torch.Tensor:
    """The paper's loss for ``num_classes`` (background counted), with its default weights unless overridden.

    One logit channel means the binary path (``num_classes`` 1, or 2 when background + foreground are
    predicted by a single channel, as for LIDC); otherwise the multi-class path with K = ``num_classes``.
    """
    channels = logits.shape[1]
    binary = channels == 1 and num_classes in (1, 2)
    if not binary and channels != num_classes:
        raise ValueError(f"logits have {channels} channels but num_classes={num_classes}")
    loss_fn, (ce_default, dice_default) = (
        (binary_seg_loss, BINARY_WEIGHTS) if binary else (multiclass_seg_loss, MULTICLASS_WEIGHTS)
    )
    return loss_fn(
        logits,
        target,
        ce_weight=ce_default if ce_weight is None else ce_weight,
        dice_weight=dice_default if dice_weight is None else dice_weight,
    )
