"""Slice-2D for ViTs: the unchanged 2D model on every axial slice, all slices batched together.

Models that accept any image size (``dynamic_img_size``, e.g. timm's DINOv3) run their own
``forward_features``, so this is the 2D model's own code path — the reference the PlaneCycle
invariant test compares against. Fixed-size ViTs go through the shared token path with the
absolute position grid resampled to the slice grid (exact at the pretraining grid size).
"""

from __future__ import annotations

import torch
from torch import nn

from liftbench.lifting import rope_rescale
from liftbench.lifting import vit_tokens as vt
from liftbench.lifting.base import Lifted, check_options
from liftbench.lifting.features import Features


class Slice2DViT(Lifted):
    """Per-slice CLS ``(B, D, E)`` and patch features ``(B, E, D, h, w)``."""

    strategy = "2d"

    def __init__(self, model: nn.Module, checkpoint: bool = False, **options) -> None:
        check_options(self.strategy, options, ("checkpoint",))
        vt.check_supported(model)
        super().__init__(model)
        self.checkpoint = checkpoint
        self._fallback = None
        if not getattr(model, "dynamic_img_size", False):
            from liftbench.lifting.vit_planecycle import PlaneCycleViT

            # Not a registered submodule: it only borrows self.model's blocks.
            self.__dict__["_fallback"] = PlaneCycleViT(model, schedule="HW", pooling="adaptive", checkpoint=checkpoint)

    def forward(self, volumes: torch.Tensor) -> Features:
        if self._fallback is not None:
            self._fallback.collect = self.collect
            return self._fallback(volumes)
        if rope_rescale.active(self.model) or self.collect:
            # RoPE rescaling (liftbench.lifting.rope_rescale) draws per block, and timm's forward builds one RoPE
            # for all blocks; intermediate blocks (collect) are not in forward_features' output: run the HW-only
            # PlaneCycle path instead, slice-2D block for block (bit for bit: the PlaneCycle invariant).
            from liftbench.lifting.vit_planecycle import PlaneCycleViT

            path = PlaneCycleViT(self.model, schedule="HW", pooling="adaptive", checkpoint=self.checkpoint)
            path.collect = self.collect
            return path(volumes)
        model = self.model
        volumes = vt.fit_to_patch_grid(model, self.match_channels(volumes))
        batch, chans, depth, height, width = volumes.shape
        slices = volumes.transpose(1, 2).reshape(batch * depth, chans, height, width)
        if self.checkpoint and hasattr(model, "set_grad_checkpointing"):
            model.set_grad_checkpointing(True)
            try:
                tokens = model.forward_features(slices)
            finally:
                model.set_grad_checkpointing(False)
        else:
            tokens = model.forward_features(slices)
        g = vt.num_global_tokens(model)
        h, w = model.patch_embed.dynamic_feat_size((height, width))
        patches = tokens[:, g:].reshape(batch, depth, h, w, -1).permute(0, 4, 1, 2, 3)
        cls = vt.class_token_index(model)
        pooled = tokens[:, cls] if cls is not None else tokens[:, g:].mean(dim=1)
        return Features(pooled=pooled.reshape(batch, depth, -1), patches=patches)
