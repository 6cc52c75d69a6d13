"""ConvNeXt blocks on volumes, for the inflated-3D and ACS liftings.

timm's ``ConvNeXtBlock.forward`` is written for 4D tensors in two places: the channels-last form (the one
DINOv3's ConvNeXt-T/S/B/L use) permutes ``(N, C, H, W) -> (N, H, W, C)`` around its LayerNorm and MLP, and
the layer scale is reshaped to ``(1, C, 1, 1)``. Everything else in the block works on any rank. So the block
is run by :func:`convnext_block`, the same computation written for any rank: the depthwise ``conv_dw``
(converted by the strategy like every ``Conv2d``: I3D cube or ACS planes), channels moved last with
``movedim(1, -1)`` — on a 4D tensor exactly timm's permute — so the ``LayerNorm`` and the MLP's ``Linear``
layers (the pointwise 1×1×1 "kernels") act on the channels of every voxel, then the layer scale per channel,
drop-path and the shortcut. The conv-MLP form (``conv_mlp=True``: ``LayerNorm2d`` and 1×1 ``Conv2d``, the
atto..nano models) stays channels-first; its layers are converted like any others.

:func:`check_block` refuses, at lift time, the variants that are not this computation on volumes: a
``Downsample`` shortcut, ConvNeXt-V2's global response norm (it pools over the 2D grid), an unknown norm or
MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from liftbench.errors import CannotLiftError

BLOCK = "timm.models.convnext.ConvNeXtBlock"
# Layers that act on the last axis only: correct on channels-last tensors of any rank.
CHANNELS_LAST_LEAVES = {
    "torch.nn.modules.linear.Linear",
    "torch.nn.modules.normalization.LayerNorm",
    "timm.layers.norm.LayerNorm",
}
CHANNELS_LAST_CONTAINERS = {"timm.layers.mlp.Mlp"}
_SHORTCUTS = {"torch.nn.modules.linear.Identity"}


def _qualname(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__name__}"


def check_block(block: nn.Module, path: str) -> None:
    """Raise :class:`CannotLiftError` unless :func:`convnext_block` computes what ``block`` computes in 2D."""
    shortcut = _qualname(block.shortcut)
    if shortcut not in _SHORTCUTS:
        raise CannotLiftError(f"layer {path}.shortcut ({shortcut}) of a ConvNeXt block is not lifted to volumes")
    if not block.use_conv_mlp:
        for name in ("norm", "mlp"):
            qual = _qualname(getattr(block, name))
            if qual not in CHANNELS_LAST_LEAVES | CHANNELS_LAST_CONTAINERS:
                raise CannotLiftError(
                    f"layer {path}.{name} ({qual}) of a channels-last ConvNeXt block is not known to act on the "
                    "channels of each voxel only (ConvNeXt-V2's global response norm pools over the grid)"
                )


def layer_scale(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The block's per-channel layer scale ``gamma`` on a channels-first tensor of any rank."""
    if block.gamma is None:
        return x
    return x * block.gamma.reshape(1, -1, *([1] * (x.dim() - 2)))


def convnext_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's ``ConvNeXtBlock.forward`` for ``(N, C, *spatial)`` of any rank (on 4D: the same numbers)."""
    shortcut = x
    x = block.conv_dw(x)
    if block.use_conv_mlp:
        x = block.mlp(block.norm(x))
    else:
        x = block.mlp(block.norm(x.movedim(1, -1))).movedim(-1, 1)
    return block.drop_path(layer_scale(block, x)) + block.shortcut(shortcut)
