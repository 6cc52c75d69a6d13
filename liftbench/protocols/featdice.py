"""``featdice``: zero-training segmentation quality of frozen features (docs/protocols.md, PlaneCycle paper).

For each volume with a non-empty lesion mask, the prototype is the final-normed patch feature at the
lesion's centre (its centroid's token); cosine similarity of every patch feature to it gives a map,
min-max normalised to [0, 1], upsampled trilinearly to the mask's grid and thresholded (default
0.9). Dice against the mask, averaged over volumes. The threshold can be chosen on the validation
split (``select_threshold``); the row records which split selected it — never the test split.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from liftbench.protocols.context import ProtocolResult, RunContext
from liftbench.protocols.features import extract

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.5, 0.96, 0.05))


def similarity_maps(patches: torch.Tensor, masks: np.ndarray) -> list[torch.Tensor | None]:
    """Per volume: the [0, 1] similarity map at the mask's resolution (None for an empty mask)."""
    maps = []
    for features, mask in zip(patches, masks, strict=True):
        if not mask.any():
            maps.append(None)
            continue
        grid = features.shape[1:]
        centre = np.argwhere(mask > 0).mean(axis=0)
        token = tuple(min(int(c * g / s), g - 1) for c, g, s in zip(centre, grid, mask.shape, strict=True))
        prototype = features[(slice(None), *token)]
        sim = F.cosine_similarity(features, prototype[:, None, None, None], dim=0)
        sim = (sim - sim.min()) / (sim.max() - sim.min()).clamp_min(1e-12)
        maps.append(F.interpolate(sim[None, None], size=mask.shape, mode="trilinear", align_corners=False)[0, 0])
    return maps


def mean_dice(maps: list[torch.Tensor | None], masks: np.ndarray, threshold: float) -> float:
    scores = []
    for sim, mask in zip(maps, masks, strict=True):
        if sim is None:
            continue
        pred = sim >= threshold
        truth = torch.as_tensor(mask > 0)
        scores.append(float(2 * (pred & truth).sum() / (pred.sum() + truth.sum()).clamp_min(1)))
    return float(np.mean(scores)) if scores else float("nan")


def run(ctx: RunContext) -> ProtocolResult:
    options = ctx.options
    dataset = ctx.dataset()
    model, _ = ctx.backbone()
    mean, std = ctx.normalisation(model)
    splits = ("val", "test") if options["select_threshold"] else ("test",)
    maps = {}
    with ctx.lifted(model) as lifted:
        for split in splits:
            data = dataset.splits[split]
            patches = extract(lifted, data.volumes, mean, std, options["feature_batch"], ctx.device, options["dtype"], dense=True)
            maps[split] = similarity_maps(patches, data.masks)
    threshold, selected_on = options["threshold"], ""
    if options["select_threshold"]:
        threshold = max(THRESHOLDS, key=lambda t: mean_dice(maps["val"], dataset.splits["val"].masks, t))
        selected_on = "val"
    dice = mean_dice(maps["test"], dataset.splits["test"].masks, threshold)
    return ProtocolResult(metrics=[("test", "featdice", dice), ("test", "threshold", float(threshold))], selected_on=selected_on)
