"""PlaneCycle for ViTs (PCm and PCg), exactly as docs/strategies.md defines it.

Each pretrained block runs on one plane of the schedule: the slice axis of that plane is folded into
the batch, so a block runs once on all slices of all volumes at once, with the RoPE (or resampled
absolute positions) of that plane's 2D grid. Global tokens keep one set per axial slice between blocks
and are pooled to the plane's slice count on entry (PCg: adaptive average pooling; PCm: the mean over
all copies) and back to D on exit (adaptive average pooling for both).

With schedule ``HW`` and adaptive pooling this is slice-2D, bit for bit: every pooling is D → D
(skipped, it is the identity) and every block sees exactly the tensors the 2D forward gives it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from liftbench.errors import UsageError
from liftbench.lifting import rope_rescale
from liftbench.lifting import vit_tokens as vt
from liftbench.lifting.base import Lifted, check_options
from liftbench.lifting.features import Features
from liftbench.lifting.planes import SLICE_AXIS, parse_schedule, plane_for_block, schedule_text

POOLINGS = ("adaptive", "mean")

# Permutation taking (B, D, h, w, E) to (B, S, a, b, E) for each plane, and its inverse.
_TO_PLANE = {"HW": (0, 1, 2, 3, 4), "DW": (0, 2, 1, 3, 4), "DH": (0, 3, 1, 2, 4)}
_FROM_PLANE = {"HW": (0, 1, 2, 3, 4), "DW": (0, 2, 1, 3, 4), "DH": (0, 2, 3, 1, 4)}


def pool_slices(tokens: torch.Tensor, count: int) -> torch.Tensor:
    """Adaptive average pooling of per-slice global tokens ``(B, S, g, E)`` along S to ``count``.

    ``adaptive_avg_pool1d`` semantics: averages groups when shrinking, repeats when growing; a count
    that already matches is returned untouched (identity, no rounding).
    """
    batch, slices, g, dim = tokens.shape
    if slices == count:
        return tokens
    flat = tokens.permute(0, 2, 3, 1).reshape(batch, g * dim, slices)
    pooled = F.adaptive_avg_pool1d(flat, count)
    return pooled.reshape(batch, g, dim, count).permute(0, 3, 1, 2)


class PlaneCycleViT(Lifted):
    """A timm ViT whose blocks cycle through the planes of ``schedule``."""

    def __init__(
        self,
        model: nn.Module,
        schedule: str | Sequence[str] | None = None,
        pooling: str = "adaptive",
        checkpoint: bool = False,
        **options,
    ) -> None:
        check_options("pcg" if pooling == "adaptive" else "pcm", options, ("schedule", "pooling", "checkpoint"))
        if pooling not in POOLINGS:
            raise UsageError(f"invalid pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        vt.check_supported(model)
        super().__init__(model)
        self.schedule = parse_schedule(schedule)
        self.pooling = pooling
        self.strategy = "pcg" if pooling == "adaptive" else "pcm"
        self.checkpoint = checkpoint

    def describe(self) -> dict[str, str]:
        return {"strategy": self.strategy, "schedule": schedule_text(self.schedule), "pooling": self.pooling}

    def _enter(self, globals_: torch.Tensor, count: int) -> torch.Tensor:
        if self.pooling == "mean":
            return globals_.mean(dim=1, keepdim=True).expand(-1, count, -1, -1)
        return pool_slices(globals_, count)

    def _add_first_plane_positions(self, patches: torch.Tensor) -> torch.Tensor:
        """Absolute positions (for ViTs that have them), on the first plane's grid, broadcast over its slices."""
        plane = self.schedule[0]
        _, depth, height, width, _ = patches.shape
        sizes = (depth, height, width)
        grid = tuple(n for axis, n in enumerate(sizes) if axis != SLICE_AXIS[plane])
        pos = vt.abs_pos_for_grid(self.model, grid)
        if pos is None:
            return patches
        return patches + pos.unsqueeze(SLICE_AXIS[plane])

    def forward(self, volumes: torch.Tensor) -> Features:
        model = self.model
        patches = vt.embed_volume(model, self.match_channels(volumes))
        batch, depth, h, w, dim = patches.shape
        patches = self._add_first_plane_positions(patches)
        g = vt.num_global_tokens(model)
        globals_ = vt.global_tokens(model).expand(batch, depth, g, dim)
        globals_ = vt.enter_blocks(model, globals_)
        patches = vt.enter_blocks(model, patches)

        sizes = (depth, h, w)
        ropes: dict[str, torch.Tensor | None] = {}
        layers = []
        for index, block in enumerate(model.blocks):
            plane = plane_for_block(self.schedule, index)
            axis = SLICE_AXIS[plane]
            count = sizes[axis]
            grid = tuple(n for i, n in enumerate(sizes) if i != axis)
            if plane not in ropes or rope_rescale.active(model):  # rescaled RoPE: a fresh draw per block
                ropes[plane] = vt.rope_for_grid(model, grid)
            in_plane = patches.permute(_TO_PLANE[plane]).reshape(batch * count, grid[0] * grid[1], dim)
            entering = self._enter(globals_, count).reshape(batch * count, g, dim)
            out = vt.run_block(model, block, torch.cat([entering, in_plane], dim=1), ropes[plane], self.checkpoint)
            globals_ = pool_slices(out[:, :g].reshape(batch, count, g, dim), depth)
            patches = out[:, g:].reshape(batch, count, grid[0], grid[1], dim).permute(_FROM_PLANE[plane])
            if index in self.collect:
                layers.append(model.norm(patches).permute(0, 4, 1, 2, 3))

        globals_ = model.norm(globals_)
        patches = model.norm(patches)
        cls = vt.class_token_index(model)
        pooled = globals_[:, :, cls] if cls is not None else patches.mean(dim=(2, 3))
        return Features(pooled=pooled, patches=patches.permute(0, 4, 1, 2, 3), layers=tuple(layers))
