"""What every lifted backbone returns, whatever its family or strategy."""

from __future__ import annotations

from typing import NamedTuple

import torch


class Features(NamedTuple):
    """Features of a batch of volumes.

    ``pooled`` is one vector per axial slice ``(B, D, E)`` for slice-based strategies (slice-2D,
    PlaneCycle) or one vector per volume ``(B, E)`` (flatten-3D, inflated 3D, ACS). For ViTs it is the
    final-normed CLS token, for CNNs the global average of the last feature map.
    ``patches`` is the last feature map ``(B, E, d, h, w)``, used by dense protocols (FeatDice).
    ``layers`` holds, for ViT lifters asked for intermediate blocks (``Lifted.collect``), the patch
    tokens after each of those blocks, final norm applied, as ``(B, E, D, h, w)`` — the authors'
    ``get_intermediate_layers(norm=True)`` for the segmentation decoder; empty otherwise.
    """

    pooled: torch.Tensor
    patches: torch.Tensor
    layers: tuple[torch.Tensor, ...] = ()

    @property
    def per_slice(self) -> bool:
        """True when ``pooled`` holds one vector per slice, so a head must pool over slices."""
        return self.pooled.dim() == 3
