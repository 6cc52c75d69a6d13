"""Dense features of a lifted backbone for segmentation: the patch maps of chosen blocks.

The authors' decoder reads ``get_intermediate_layers(x, n=[...], reshape=True, norm=True)``: the patch
tokens (CLS and registers dropped) after the chosen blocks, each through the backbone's final norm, as
``(B, C, D, h, w)`` — depth at full resolution for every ViT lifting. Which blocks (option ``layers``):

* ``last`` — the last block (every released config);
* ``four_last`` — the last four blocks;
* ``four_even`` — four blocks spread over the depth: the authors' table for 12 blocks (2, 5, 8, 11) and
  24 blocks (4, 11, 17, 23); other depths take ``round((i + 1) · n / 4) − 1`` for i = 0..3 (which gives
  the 12-block entry, and 5, 11, 17, 23 for 24 blocks — hence the table).

Lifted CNNs give their last feature map (``Features.patches``, depth possibly reduced by 3D/ACS); only
``last`` applies to them.
"""

from __future__ import annotations

import torch

from liftbench.errors import PluginError, UsageError
from liftbench.lifting.base import Lifted

LAYER_CHOICES = ("last", "four_last", "four_even")
_FOUR_EVEN = {12: (2, 5, 8, 11), 24: (4, 11, 17, 23)}


def block_indices(choice: str, depth: int) -> tuple[int, ...]:
    """The block indices of ``choice`` for a ViT of ``depth`` blocks."""
    if choice == "last":
        return (depth - 1,)
    if choice == "four_last":
        return tuple(range(max(depth - 4, 0), depth))
    if choice == "four_even":
        return _FOUR_EVEN.get(depth) or tuple(sorted({max(round((i + 1) * depth / 4) - 1, 0) for i in range(4)}))
    raise UsageError(f"invalid layers {choice!r}; valid: {', '.join(LAYER_CHOICES)}")


def transformer_depth(lifted: Lifted) -> int | None:
    """Number of transformer blocks of the lifted model (None for CNNs)."""
    blocks = getattr(lifted.model, "blocks", None)
    return len(blocks) if blocks is not None else None


def configure(lifted: Lifted, choice: str) -> int:
    """Ask ``lifted`` for the blocks of ``choice``; returns how many maps :func:`dense_maps` will give."""
    depth = transformer_depth(lifted)
    if depth is None:
        if choice != "last":
            raise UsageError(f"layers={choice!r} needs a ViT; a lifted CNN ({lifted.strategy}) gives its last feature map only: use layers=last")
        return 1
    indices = block_indices(choice, depth)
    lifted.collect = () if choice == "last" else indices
    return len(indices)


def dense_maps(lifted: Lifted, x: torch.Tensor) -> list[torch.Tensor]:
    """The configured patch maps of input ``x`` (B, C, D, H, W), each ``(B, E, d, h, w)``."""
    features = lifted(x)
    if not lifted.collect:
        return [features.patches]
    if len(features.layers) != len(lifted.collect):
        raise PluginError(f"lifter {type(lifted).__name__} ({lifted.strategy}) returned {len(features.layers)} intermediate maps "
                          f"for blocks {list(lifted.collect)}: a ViT lifter must honour Lifted.collect (docs/segmentation.md)")  # fmt: skip
    return list(features.layers)
