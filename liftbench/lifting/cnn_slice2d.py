"""Slice-2D for CNNs: the unchanged 2D network on every axial slice, independently.

``(B, C, D, H, W)`` becomes a batch of ``B·D`` images ``(C, H, W)``; the trunk's last feature map of
each slice is averaged over its grid. Outputs: per-slice ``pooled (B, D, F)`` and the slices' maps
stacked back into a volume, ``patches (B, F, D, h, w)``. Nothing is patched, so any CNN with a known
trunk (timm ``forward_features`` or a torchvision ResNet) works.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from liftbench.lifting.base import Lifted, check_options
from liftbench.lifting.cnn_layers import check_trunk, ensure_unpatched, run_trunk, slice_features, volumes_to_slices
from liftbench.lifting.features import Features


class Slice2DCNN(Lifted):
    """Every axial slice through the 2D CNN; one pooled vector per slice."""

    strategy = "2d"

    def __init__(self, model: nn.Module, **options: Any) -> None:
        check_options(self.strategy, options, ())
        super().__init__(model)
        check_trunk(model)
        ensure_unpatched(model)

    def forward(self, volumes: torch.Tensor) -> Features:
        volumes = self.match_channels(volumes)
        fmap = run_trunk(self.model, volumes_to_slices(volumes))
        return slice_features(fmap, volumes.shape[0])
