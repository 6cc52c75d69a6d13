"""PlaneCycle for CNNs: each residual block runs its unchanged 2D convolutions on one plane.

The paper claims PlaneCycle for CNNs without measuring it and leaves the unit (block or conv) open
(docs/strategies.md, "PlaneCycle for CNNs").
Our choice: **the residual block**, because a block is the unit the 2D network was trained to compose —
its convs, norms and shortcut see one consistent 2D grid — and a ResNet-50 has 16 of them, so it cycles
the planes through depth like a 12/24-block ViT. Blocks, in order:

* ``layer1 .. layerN`` (timm and torchvision ResNets): the blocks of each layer (3+4+6+3 = 16 for ResNet-50);
* ``stages`` (ConvNeXt, ...): each stage's ``blocks`` (the stage's downsample layer runs between blocks);
* ``blocks`` (EfficientNet, MobileNet): the blocks of each stage;
* any other model: :class:`CannotLiftError` (no per-conv fallback: it would be a different method).

Block ``i`` runs on ``plane = schedule[i mod len(schedule)]``. Between blocks the features are kept as
axial slices ``(B·D, C, H, W)``; a block on plane DW sees ``(B·H, C, D, W)``, on DH ``(B·W, C, D, H)``,
and its output is put back as axial slices. Everything outside the blocks — the stem (conv1, bn1, act,
maxpool), stage downsamples, a final conv/norm — runs on axial slices.

Strides: a strided block downsamples the two axes of *its* plane only. So the depth axis shrinks only in
strided blocks whose plane contains D (DW, DH), and H or W do not shrink there; the stem always halves
H and W twice and never D. With ResNet-50 and the default schedule HW,DW,DH,HW the strided blocks are
3 (HW), 7 (HW) and 13 (DW): a 64³ volume ends as a ``(32, 4, 2)`` map — stem /4 and blocks 3, 7 on H, W,
block 13 on D and W. ``pooled`` is therefore per *output* depth index: the last map ``(B, F, d, h, w)``
averaged over ``h, w`` gives ``(B, d, F)`` and ``d`` may be smaller than the input's D.

A CNN has no global tokens, so PCm and PCg compute the same thing; ``pooling`` is only recorded.
With schedule HW only, no block is patched and the result equals :class:`Slice2DCNN` bit for bit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from liftbench.errors import CannotLiftError, UsageError
from liftbench.lifting.base import Lifted, check_options
from liftbench.lifting.cnn_layers import (
    Patcher,
    check_trunk,
    ensure_unpatched,
    run_trunk,
    slice_features,
    volumes_to_slices,
)
from liftbench.lifting.features import Features
from liftbench.lifting.planes import parse_schedule, plane_for_block, schedule_text

POOLINGS = ("mean", "adaptive")


def _children_or_self(module: nn.Module) -> list[nn.Module]:
    return list(module.children()) if isinstance(module, nn.Sequential) else [module]


def find_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's residual blocks in execution order (see the module docstring for the rules)."""
    children = dict(model.named_children())
    layers = sorted((n for n in children if re.fullmatch(r"layer\d+", n)), key=lambda n: int(n[5:]))
    blocks: list[nn.Module] = []
    if layers:
        for name in layers:
            blocks += _children_or_self(children[name])
    elif isinstance(children.get("stages"), nn.Module):
        for stage in children["stages"].children():
            inner = getattr(stage, "blocks", None)
            blocks += _children_or_self(inner) if isinstance(inner, nn.Module) else _children_or_self(stage)
    elif isinstance(children.get("blocks"), nn.Sequential):
        for stage in children["blocks"].children():
            blocks += _children_or_self(stage)
    if not blocks:
        raise CannotLiftError(
            f"PlaneCycle finds no residual blocks in {type(model).__name__}: it looks for layer1..N, stages or "
            "blocks sequences"
        )
    return blocks


def to_plane(x: torch.Tensor, batch: int, plane: str) -> torch.Tensor:
    """Axial slices ``(B·D, C, H, W)`` to the slices of ``plane``: HW as is, DW ``(B·H, C, D, W)``, DH ``(B·W, C, D, H)``."""
    if plane == "HW":
        return x
    slices, channels, height, width = x.shape
    volume = x.reshape(batch, slices // batch, channels, height, width)  # (B, D, C, H, W)
    order = (0, 3, 2, 1, 4) if plane == "DW" else (0, 4, 2, 1, 3)
    moved = volume.permute(order)
    return moved.reshape(-1, *moved.shape[2:])


def from_plane(y: torch.Tensor, batch: int, plane: str) -> torch.Tensor:
    """The inverse of :func:`to_plane`, for a block output of any size: back to axial slices."""
    if plane == "HW":
        return y
    stacked = y.reshape(batch, y.shape[0] // batch, *y.shape[1:])  # (B, S, C, D, b)
    order = (0, 3, 2, 1, 4) if plane == "DW" else (0, 3, 2, 4, 1)
    volume = stacked.permute(order)  # (B, D, C, H, W)
    return volume.reshape(-1, *volume.shape[2:])


class _Batch:
    """The batch size of the volumes being run: blocks need it to regroup slices (set per forward)."""

    size: int | None = None


def plane_block(block: nn.Module, plane: str, batch: _Batch, x: torch.Tensor) -> torch.Tensor:
    """Patched block forward: run the class's own 2D forward on the slices of ``plane``."""
    if batch.size is None:
        raise RuntimeError(
            "a PlaneCycle block was called outside PlaneCycleCNN.forward; unlift() the model to use it in 2D"
        )
    return from_plane(type(block).forward(block, to_plane(x, batch.size, plane)), batch.size, plane)


class PlaneCycleCNN(Lifted):
    """PlaneCycle over a CNN's residual blocks; per-slice ``pooled (B, d, F)``, ``patches (B, F, d, h, w)``."""

    strategy = "pcg"

    def __init__(self, model: nn.Module, **options: Any) -> None:
        check_options("pcm/pcg", options, ("schedule", "pooling"))
        super().__init__(model)
        pooling = options.get("pooling", "adaptive")
        if pooling not in POOLINGS:
            raise UsageError(f"invalid pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.strategy = "pcm" if pooling == "mean" else "pcg"
        schedule: str | Sequence[str] | None = options.get("schedule")
        self.schedule = parse_schedule(schedule)
        check_trunk(model)
        ensure_unpatched(model)
        self._batch = _Batch()
        self._patcher = Patcher()
        self._lifted = True
        blocks = find_blocks(model)  # refuses before anything is patched
        try:
            for index, block in enumerate(blocks):
                plane = plane_for_block(self.schedule, index)
                if plane != "HW":
                    self._patcher.patch(block, plane_block, plane, self._batch)
        except BaseException:  # all or nothing: a failed lifting leaves the model as it was
            self._patcher.restore()
            raise

    def describe(self) -> dict[str, str]:
        return {"strategy": self.strategy, "schedule": schedule_text(self.schedule), "pooling": self.pooling}

    def forward(self, volumes: torch.Tensor) -> Features:
        if not self._lifted:
            raise UsageError("this lifted model was unlifted; lift the 2D model again")
        volumes = self.match_channels(volumes)
        self._batch.size = volumes.shape[0]
        try:
            fmap = run_trunk(self.model, volumes_to_slices(volumes))
        finally:
            self._batch.size = None
        return slice_features(fmap, volumes.shape[0])

    def unlift(self) -> nn.Module:
        self._patcher.restore()
        self._lifted = False
        return self.model
