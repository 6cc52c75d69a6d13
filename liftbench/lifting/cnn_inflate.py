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

import torch
import torch.nn.functional as F
from torch import nn

from liftbench.lifting.cnn_volume import VolumeCNN


def inflate_weight(weight: torch.Tensor, depth: int) -> torch.Tensor:
    """``(O, I, k, k) -> (O, I, depth, k, k)``: the 2D kernel repeated along depth, divided by ``depth``."""
    return weight.unsqueeze(2).expand(-1, -1, depth, -1, -1) / depth


def inflated_conv(conv: nn.Conv2d, geometry: tuple[int, int, int, int], x: torch.Tensor) -> torch.Tensor:
    """What an inflated ``conv`` computes on ``(B, C, D, H, W)``; ``geometry`` is ``(k, s, p, d)``."""
    k, s, p, d = geometry
    return F.conv3d(x, inflate_weight(conv.weight, k), conv.bias, s, p, d, conv.groups)


class Inflated3DCNN(VolumeCNN):
    """The whole volume through the inflated network; pooled ``(B, F)``, patches ``(B, F, d, h, w)``."""

    strategy = "3d"
    conv_op = staticmethod(inflated_conv)
