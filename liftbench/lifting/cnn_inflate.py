"""Inflated 3D CNN (I3D, Carreira & Zisserman 2017): every 2D kernel becomes a cube.

A ``Conv2d`` k×k becomes a ``conv3d`` k×k×k whose weight is the 2D kernel repeated k times along depth
and divided by k, with the stride, padding and dilation tripled (the depth gets the same value as the
plane). On a volume that is constant along depth, the inflated conv therefore gives back the 2D conv's
output on every depth slice whose receptive field stays inside the volume (the ones next to the padded
ends see zeros). Norm and pooling layers become their 3D counterparts (:mod:`cnn_volume`).

The 3D kernel is computed from the ``Conv2d``'s own weight at every forward: nothing is copied, no
parameter is added, and gradients reach the pretrained 2D weights.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from liftbench.errors import UsageError
from liftbench.lifting.base import Lifted, check_options
from liftbench.lifting.cnn_layers import check_trunk, ensure_unpatched, run_trunk, volume_features
from liftbench.lifting.cnn_volume import patch_for_volumes
from liftbench.lifting.features import Features


def inflate_weight(weight: torch.Tensor, depth: int) -> torch.Tensor:
    """``(O, I, k, k) -> (O, I, depth, k, k)``: the 2D kernel repeated along depth, divided by ``depth``."""
    return weight.unsqueeze(2).expand(-1, -1, depth, -1, -1) / depth


def inflated_conv(conv: nn.Conv2d, geometry: tuple[int, int, int, int], x: torch.Tensor) -> torch.Tensor:
    """What an inflated ``conv`` computes on ``(B, C, D, H, W)``; ``geometry`` is ``(k, s, p, d)``."""
    k, s, p, d = geometry
    return F.conv3d(x, inflate_weight(conv.weight, k), conv.bias, s, p, d, conv.groups)


class Inflated3DCNN(Lifted):
    """The whole volume through the inflated network; pooled ``(B, F)``, patches ``(B, F, d, h, w)``."""

    strategy = "3d"

    def __init__(self, model: nn.Module, **options: Any) -> None:
        check_options(self.strategy, options, ())
        super().__init__(model)
        check_trunk(model)
        ensure_unpatched(model)
        self._patcher = patch_for_volumes(model, self.strategy, inflated_conv)
        self._lifted = True

    def forward(self, volumes: torch.Tensor) -> Features:
        if not self._lifted:
            raise UsageError("this lifted model was unlifted; lift the 2D model again")
        return volume_features(run_trunk(self.model, self.match_channels(volumes)))

    def unlift(self) -> nn.Module:
        self._patcher.restore()
        self._lifted = False
        return self.model
