"""The authors' ``WarmupOneCycleLR`` as a plain function of the step, and as a torch ``LambdaLR``.

Why reimplement rather than use ``OneCycleLR``: the authors' scheduler is not a one-cycle schedule in torch's
sense. With their settings (start at 1e-6 of the peak, final lr 0, no momentum cycling) it is a linear warm-up
that is itself multiplied by ``1 − s/T``, followed by a cosine that runs over the *whole* run rather than over
the post-warm-up part, so the lr jumps from ≈0.949 to ≈0.994 of the peak at the end of warm-up. Matching that
exactly matters for reproducing the fine-tuning curves.

With T = ``total`` updates and W = ``warmup`` updates, the factor applied to each group's peak lr is::

    s <  W:  (1 − (1 − s/W)(1 − 1e-6)) · (1 − s/T)
    s >= W:  (1 + cos(π (s + 1) / T)) / 2

The first update uses s = 0. For s ≥ T (a scheduler stepped after the last update) the factor stays at 0, the
schedule's minimum, instead of climbing back up the cosine.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

WARMUP_START = 1e-6  # fraction of the peak lr at step 0


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Fraction of the peak lr at update ``step`` (0-based) of ``total``, after ``warmup`` warm-up updates."""
    if total <= 0 or warmup < 0 or step < 0:
        raise ValueError(f"need total > 0, warmup >= 0, step >= 0; got {total=}, {warmup=}, {step=}")
    if step >= total:
        return 0.0
    if step < warmup:
        return (1 - (1 - step / warmup) * (1 - WARMUP_START)) * (1 - step / total)
    return (1 + math.cos(math.pi * (step + 1) / total)) / 2


def scheduler(optimizer: torch.optim.Optimizer, total: int, warmup: int) -> LambdaLR:
    """A ``LambdaLR`` scaling every param group's own lr (its peak) by :func:`lr_factor`; step it once per update."""
    return LambdaLR(optimizer, lambda step: lr_factor(step, total, warmup))
