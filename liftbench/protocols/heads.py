"""The paper's classification heads (docs/protocols.md): learned pooling over slices, then linear."""

from __future__ import annotations

import torch
from torch import nn


class SlicePoolingHead(nn.Module):
    """``Linear(D, 1)`` over the slice axis of ``(B, D, E)`` features, then ``Linear(E, classes)``."""

    def __init__(self, slices: int, dim: int, classes: int) -> None:
        super().__init__()
        self.pool = nn.Linear(slices, 1)
        self.fc = nn.Linear(dim, classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(features.transpose(1, 2)).squeeze(-1)
        return self.fc(pooled)


def make_head(feature_shape: tuple[int, ...], classes: int) -> nn.Module:
    """Slice pooling + linear for per-slice features ``(D, E)``; linear only for one vector ``(E,)``."""
    if len(feature_shape) == 2:
        return SlicePoolingHead(feature_shape[0], feature_shape[1], classes)
    return nn.Linear(feature_shape[0], classes)
