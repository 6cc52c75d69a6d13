"""``ProgressiveUpHead``: the decoder every backbone shares in the segmentation experiments.

Why this exact layout: Table 3 compares lifting strategies through one fixed head, so the head must be the
authors' to the layer — 1×1 fusion to 512 channels, then four up-blocks that each double H and W (never D)
while halving the channels, 512 → 32, then a 1×1 classifier. With a ViT/16 feature volume (B, C, D, H/16,
W/16) the logits come out at the input resolution (B, K, D, H, W).

Initialisation is PyTorch's default on purpose: the authors' weight-init routine only matches 2D convolutions,
of which there are none, so it never runs. Only the classifier bias is zeroed.

``up_blocks`` (default 4, the authors') fits the head to another in-plane stride: a patch-8 ViT needs three
doublings to reach the input grid, a CNN of stride 32 five (:func:`up_blocks_for`), so the head never computes
its widest layers at a resolution it then throws away. The protocols pick it from the feature grid; for the
patch-16 ViTs of the paper it is 4, the authors' head to the layer. ``size`` then resizes the logits
trilinearly where they still differ from the mask (3D CNNs that also shrink depth), which the authors' code
also does whenever logits and ground truth differ in size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

UP_BLOCKS = 4


def up_blocks_for(feature_side: int, input_side: int) -> int:
    """Doublings from the feature grid's in-plane side to the input's (4 for a 16-pixel patch; at least 1)."""
    return max(1, round(math.log2(max(input_side, 1) / max(feature_side, 1))))


class UpBlock3D(nn.Sequential):
    """Double H and W (not D), then two 3×3×3 conv → GroupNorm → GELU stages going from ``cin`` to ``cout``."""

    def __init__(self, cin: int, cout: int) -> None:
        groups = min(8, cout)
        super().__init__(
            nn.Upsample(scale_factor=(1, 2, 2), mode="trilinear", align_corners=False),
            nn.Conv3d(cin, cout, kernel_size=3, padding=1, bias=False),
            nn.GroupNorm(groups, cout),
            nn.GELU(),
            nn.Conv3d(cout, cout, kernel_size=3, padding=1, bias=False),
            nn.GroupNorm(groups, cout),
            nn.GELU(),
        )


class ProgressiveUpHead(nn.Module):
    """Feature volume(s) (B, C, D, h, w) → logits (B, num_classes, D, 16h, 16w), or ``size`` if given.

    ``in_channels`` is the channel count after concatenating the inputs (C × number of layers; the paper's
    configs use one layer). ``dropout`` is a Dropout3d on the input features (0 for linear probing, 0.2 for
    fine-tuning in the released configs).
    """

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 512, dropout: float = 0.0, up_blocks: int = UP_BLOCKS) -> None:
        super().__init__()
        if up_blocks < 1 or hidden % 2**up_blocks:
            raise ValueError(f"hidden={hidden} must be divisible by {2**up_blocks} ({up_blocks} halvings)")
        self.dropout = nn.Dropout3d(dropout)
        # One group = a LayerNorm over (C, D, h, w) with a per-channel affine, as the authors' "use_layernorm".
        self.input_norm = nn.GroupNorm(1, in_channels)
        self.fuse = nn.Sequential(
            nn.Conv3d(in_channels, hidden, kernel_size=1, bias=False),
            nn.GroupNorm(8, hidden),
            nn.ReLU(inplace=True),
        )
        widths = [hidden // 2**i for i in range(up_blocks + 1)]
        self.up = nn.Sequential(*(UpBlock3D(cin, cout) for cin, cout in zip(widths[:-1], widths[1:], strict=True)))
        self.classifier = nn.Conv3d(widths[-1], num_classes, kernel_size=1, bias=True)
        nn.init.zeros_(self.classifier.bias)

    def forward(
        self, features: torch.Tensor | Sequence[torch.Tensor], size: Sequence[int] | None = None
    ) -> torch.Tensor:
        x = features if isinstance(features, torch.Tensor) else torch.cat(list(features), dim=1)
        x = self.fuse(self.input_norm(self.dropout(x)))
        logits = self.classifier(self.up(x))
        if size is not None and tuple(size) != tuple(logits.shape[2:]):
            logits = F.interpolate(logits, size=tuple(size), mode="trilinear", align_corners=False)
        return logits
