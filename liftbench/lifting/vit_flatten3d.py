"""Flatten-3D for ViTs: one token sequence per volume through every block, with 3D RoPE.

One set of global tokens, then all ``D·h·w`` patch tokens in row-major ``(D, h, w)`` order. Attention
cost grows as ``(D·h·w)²``: the cost PlaneCycle avoids. For ViTs with learned absolute positions
(no RoPE), each slice gets the 2D grid resampled to ``(h, w)`` and depth carries no position: an
approximation, documented in the README.
"""

from __future__ import annotations

import torch
from torch import nn

from liftbench.errors import CannotLiftError
from liftbench.lifting import rope_rescale
from liftbench.lifting import vit_tokens as vt
from liftbench.lifting.base import Lifted, check_options
from liftbench.lifting.features import Features
from liftbench.lifting.rope3d import rope3d_embed


def head_dim_of(model: nn.Module) -> int:
    attn = model.blocks[0].attn
    return int(getattr(attn, "head_dim", model.embed_dim // attn.num_heads))


class Flatten3DViT(Lifted):
    """One CLS ``(B, E)`` per volume and patch features ``(B, E, D, h, w)``."""

    strategy = "3d"

    def __init__(self, model: nn.Module, checkpoint: bool = False, **options) -> None:
        check_options(self.strategy, options, ("checkpoint",))
        vt.check_supported(model)
        rope = getattr(model, "rope", None)
        if rope is not None and not hasattr(rope, "periods"):
            raise CannotLiftError(f"flatten-3D needs DINOv3-style RoPE or absolute positions; {type(rope).__name__} is neither")
        super().__init__(model)
        self.checkpoint = checkpoint

    def _rope(self, grid: tuple[int, int, int], device: torch.device) -> torch.Tensor | None:
        rope = getattr(self.model, "rope", None)
        if rope is None:
            return None
        scale = rope_rescale.draw(self.model) or 1.0  # DINOv3's train-mode coordinate rescaling, where asked
        embed = rope3d_embed(grid, head_dim_of(self.model), base=rope.temperature or 100.0, rotate_half=rope.rotate_half, scale=scale)
        return embed.to(device)

    def forward(self, volumes: torch.Tensor) -> Features:
        model = self.model
        patches = vt.embed_volume(model, self.match_channels(volumes))
        batch, depth, h, w, dim = patches.shape
        pos = vt.abs_pos_for_grid(model, (h, w))
        if pos is not None:
            patches = patches + pos
        g = vt.num_global_tokens(model)
        globals_ = vt.global_tokens(model).expand(batch, g, dim)
        tokens = vt.enter_blocks(model, torch.cat([globals_, patches.reshape(batch, depth * h * w, dim)], dim=1))
        rope = self._rope((depth, h, w), tokens.device)
        layers = []
        for index, block in enumerate(model.blocks):
            if index and rope is not None and rope_rescale.active(model):  # rescaled RoPE: a fresh draw per block
                rope = self._rope((depth, h, w), tokens.device)
            tokens = vt.run_block(model, block, tokens, rope, self.checkpoint)
            if index in self.collect:
                layers.append(model.norm(tokens[:, g:]).reshape(batch, depth, h, w, dim).permute(0, 4, 1, 2, 3))
        tokens = model.norm(tokens)
        cls = vt.class_token_index(model)
        pooled = tokens[:, cls] if cls is not None else tokens[:, g:].mean(dim=1)
        patches = tokens[:, g:].reshape(batch, depth, h, w, dim).permute(0, 4, 1, 2, 3)
        return Features(pooled=pooled, patches=patches, layers=tuple(layers))
