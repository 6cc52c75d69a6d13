"""FeatDice: how well frozen lifted features segment without any training — the authors' two procedures.

Both read the last block's patch tokens after the final norm, ``(C, d, h, w)`` per volume, and never
train anything. They differ by task, as the authors' two scripts do:

* **lesion** (binary masks; the LIDC script) — a reference token, the cosine similarity of every token to
  it, min-max normalised per volume ``(s − min) / (max − min + 1e-8)``, trilinearly upsampled
  (``align_corners=False``) to the mask's grid, thresholded ``s > t`` (``t`` = 0.9, hard-coded by the
  authors). The reference is the token at the geometric centre of the patch (``D//2, h//2, w//2``) on
  lesion-centred data (LIDC); on data whose lesions sit anywhere (the synthetic set) the token at the
  mask's centroid (option ``reference``). Volumes with an empty mask are skipped.
* **prototype** (multi-class masks; the MMWHS notebook) — for every class, background included, the
  one-hot mask is downsampled to the token grid (nearest); the prototype is the mean feature over the
  class's tokens (an oracle from the volume's own ground truth), the map the raw cosine to it (−1 where
  the class has no token). The K maps are upsampled trilinearly to the mask's grid and the argmax is the
  prediction: no threshold.

Dice: the paper's semantics (:mod:`liftbench.segmentation.dice`): background excluded, empty classes
skipped, mean over classes then volumes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def procedure_for(choice: str, num_classes: int) -> str:
    """``auto``: lesion for binary masks, prototype for multi-class ones."""
    if choice != "auto":
        return choice
    return "lesion" if num_classes == 2 else "prototype"


def reference_token(features: torch.Tensor, mask: torch.Tensor, reference: str) -> torch.Tensor:
    """The lesion procedure's reference feature ``(C,)``: patch centre or mask centroid's token."""
    grid = features.shape[1:]
    if reference == "centre":
        index = tuple(n // 2 for n in grid)
    else:
        centre = torch.nonzero(mask > 0).double().mean(dim=0) + 0.5
        index = tuple(min(int(c * g / s), g - 1) for c, g, s in zip(centre.tolist(), grid, mask.shape, strict=True))
    return features[(slice(None), *index)]


def lesion_map(features: torch.Tensor, mask: torch.Tensor, reference: str) -> torch.Tensor:
    """Min-max normalised cosine map to the reference token, at the mask's grid ``(D, H, W)``."""
    ref = F.normalize(reference_token(features, mask, reference), dim=0)
    sim = torch.einsum("cdhw,c->dhw", F.normalize(features, dim=0), ref)
    sim = (sim - sim.min()) / (sim.max() - sim.min() + 1e-8)
    return F.interpolate(sim[None, None], size=tuple(mask.shape), mode="trilinear", align_corners=False)[0, 0]


def prototype_prediction(features: torch.Tensor, mask: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Argmax over per-class prototype cosine maps, at the mask's grid: integer labels ``(D, H, W)``."""
    grid = tuple(features.shape[1:])
    onehot = F.one_hot(mask.long(), num_classes).movedim(-1, 0).float()
    tokens = F.interpolate(onehot[None], size=grid, mode="nearest")[0]
    maps = []
    for k in range(num_classes):
        where = tokens[k] > 0
        if not where.any():
            maps.append(torch.full(grid, -1.0, dtype=features.dtype))
            continue
        prototype = features[:, where].mean(dim=1)
        maps.append(F.cosine_similarity(features, prototype[:, None, None, None], dim=0))
    stacked = F.interpolate(torch.stack(maps)[None], size=tuple(mask.shape), mode="trilinear", align_corners=False)[0]
    return stacked.argmax(dim=0)


def lesion_dice(sim: torch.Tensor, mask: torch.Tensor, thresholds) -> np.ndarray:
    """Foreground Dice of ``sim > t`` for each threshold: ``(T,)`` (NaN when the mask is empty)."""
    from liftbench.segmentation.dice import threshold_sweep

    return threshold_sweep(sim[None], (mask > 0)[None].long(), thresholds)[0]
