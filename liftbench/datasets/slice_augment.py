"""In-plane rotation and flips of a whole volume, one draw per volume: the LIDC training augmentation.

Why one angle for all slices: the authors apply torchvision's ``RandomRotation(degrees=(-15, 15),
interpolation=NEAREST)`` and ``RandomHorizontalFlip``/``RandomVerticalFlip(0.5)`` to a (D, C, H, W) stack,
which draws one set of parameters per call, so every slice of a volume turns by the same angle (fill 0).

``transform_mask=False`` reproduces the released code's bug: called on two plain tensors, torchvision v2
transforms only the first, so the mask keeps its original orientation while the image moves.
Parameters come from the numpy generator only (angle, then the two coins, always all three), so a given
generator state always gives the same result.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

MAX_DEGREES = 15.0


def rotate_flip(
    image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator, transform_mask: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate ``image`` (1, D, H, W) and ``mask`` (D, H, W) in the H-W plane, then flip each way with p=0.5."""
    angle = float(rng.uniform(-MAX_DEGREES, MAX_DEGREES))
    hflip, vflip = bool(rng.random() < 0.5), bool(rng.random() < 0.5)

    def apply(x: torch.Tensor) -> torch.Tensor:
        x = F.rotate(x, angle, interpolation=InterpolationMode.NEAREST, fill=0)
        if hflip:
            x = F.horizontal_flip(x)
        if vflip:
            x = F.vertical_flip(x)
        return x

    return apply(image), apply(mask) if transform_mask else mask
