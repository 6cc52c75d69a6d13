"""Running a lifting in a test: lift, run without grad, and always unlift (a failed test must not leave a
shared model patched). Shared by the CNN and ConvNeXt lifting tests."""

from __future__ import annotations

import torch

import liftbench


def run_lifted(model, volume, strategy, **options):
    """``(pooled, patches)`` of ``volume`` through ``model`` lifted with ``strategy``; the model is unlifted after."""
    lifted = liftbench.lift(model, strategy, **options)
    try:
        with torch.no_grad():
            features = lifted(volume)
    finally:
        lifted.unlift()
    return features.pooled, features.patches
