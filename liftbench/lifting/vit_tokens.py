"""The pieces of a timm ViT that every lifted ViT forward reuses: patch tokens, global tokens,
absolute position embeddings resampled to a plane's grid, RoPE per grid, and running one block.

These read the model's own modules and parameters; nothing is copied. Supported: timm's ``Eva``
family (DINOv3, EVA-02: RoPE, optional absolute positions) and ``VisionTransformer`` (DINOv2, DeiT,
plain ViT: learned absolute positions).
"""

from __future__ import annotations

import torch
from timm.layers import resample_abs_pos_embed
from torch import nn
from torch.utils.checkpoint import checkpoint

from liftbench.errors import CannotLiftError
from liftbench.lifting import rope_rescale


def check_supported(model: nn.Module) -> None:
    """Refuse ViTs whose position handling the lifted forwards cannot reproduce, with the reason."""
    if getattr(model, "rope_mixed", False):
        raise CannotLiftError(f"{type(model).__name__} uses per-block 'mixed' RoPE, which liftbench cannot re-grid per plane")
    if getattr(model, "pos_embed", None) is not None and getattr(model, "cls_token", None) is None and not getattr(model, "no_embed_class", True):
        raise CannotLiftError(f"{type(model).__name__}: absolute position embedding layout not understood")


def num_global_tokens(model: nn.Module) -> int:
    """CLS + register tokens (5 for DINOv3)."""
    return int(getattr(model, "num_prefix_tokens", 1))


def embed_patches(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Patch-embed 2D images ``(N, C, H, W)`` into a token grid ``(N, h, w, E)``.

    Calls the patch embedding's own projection and norm, so any image size divisible by the patch
    size works even for models built with a fixed ``img_size``.
    """
    pe = model.patch_embed
    if getattr(pe, "dynamic_img_pad", False):
        ph, pw = pe.patch_size
        height, width = images.shape[-2:]
        images = nn.functional.pad(images, (0, (pw - width % pw) % pw, 0, (ph - height % ph) % ph))
    x = pe.proj(images).permute(0, 2, 3, 1)
    return pe.norm(x)


def global_tokens(model: nn.Module) -> torch.Tensor:
    """The learned global tokens ``(g, E)``: CLS then registers, with their position embedding if any."""
    parts = []
    if getattr(model, "cls_token", None) is not None:
        parts.append(model.cls_token[0])
    if getattr(model, "reg_token", None) is not None:
        parts.append(model.reg_token[0])
    if not parts:
        return model.patch_embed.proj.weight.new_zeros(0, model.embed_dim)
    tokens = torch.cat(parts, dim=0)
    pos = getattr(model, "pos_embed", None)
    if pos is not None and not getattr(model, "no_embed_class", False):
        tokens = tokens + pos[0, : tokens.shape[0]]
    return tokens


def abs_pos_for_grid(model: nn.Module, grid: tuple[int, int]) -> torch.Tensor | None:
    """The model's learned 2D position grid resampled (bicubic, timm's rule) to ``grid``: ``(a, b, E)``.

    None for RoPE-only models (DINOv3). For the training grid itself this is the pretrained table.
    """
    pos = getattr(model, "pos_embed", None)
    if pos is None:
        return None
    prefix = 0 if getattr(model, "no_embed_class", False) else num_global_tokens(model)
    if getattr(model, "cls_token", None) is None and getattr(model, "reg_token", None) is None:
        prefix = 0
    old = tuple(model.patch_embed.grid_size)
    resampled = resample_abs_pos_embed(pos, new_size=list(grid), old_size=list(old), num_prefix_tokens=prefix)
    return resampled[0, prefix:].reshape(grid[0], grid[1], -1)


def rope_for_grid(model: nn.Module, grid: tuple[int, int]) -> torch.Tensor | None:
    """The RoPE the 2D model would use for an ``a × b`` token grid (None without RoPE)."""
    rope = getattr(model, "rope", None)
    if rope is None:
        return None
    scale = rope_rescale.draw(model)  # DINOv3's train-mode coordinate rescaling, only where a protocol asks
    if scale is not None:
        return rope_rescale.rope2d_embed(rope, grid, scale)
    return rope.get_embed(shape=list(grid))


def run_block(model: nn.Module, block: nn.Module, x: torch.Tensor, rope: torch.Tensor | None, use_checkpoint: bool) -> torch.Tensor:
    """Run one pretrained block, passing RoPE only to blocks that take it; optionally checkpointed."""
    kwargs = {"rope": rope} if getattr(model, "rope", None) is not None else {}
    if use_checkpoint and torch.is_grad_enabled():
        return checkpoint(block, x, use_reentrant=False, **kwargs)
    return block(x, **kwargs)


def enter_blocks(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """What the 2D forward applies between embedding and the first block (dropout, pre-norm)."""
    return model.norm_pre(model.pos_drop(tokens))


def class_token_index(model: nn.Module) -> int | None:
    """Index of the CLS token among the global tokens (None if the model has none)."""
    return 0 if getattr(model, "cls_token", None) is not None else None


def fit_to_patch_grid(model: nn.Module, volumes: torch.Tensor) -> torch.Tensor:
    """Resize each axial slice (bilinear) so H and W are multiples of the patch size.

    A ViT cannot embed a 28-pixel side with 16-pixel patches; MedMNIST's 28³ volumes become
    28 × 32 × 32 (depth untouched: slices are one voxel thick on every plane). Sizes that already fit
    are returned untouched, so 32³ and 64³ inputs are exact.
    """
    ph, pw = model.patch_embed.patch_size
    batch, chans, depth, height, width = volumes.shape
    target = (max(ph, round(height / ph) * ph), max(pw, round(width / pw) * pw))
    if target == (height, width):
        return volumes
    slices = volumes.transpose(1, 2).reshape(batch * depth, chans, height, width)
    slices = nn.functional.interpolate(slices, size=target, mode="bilinear", align_corners=False)
    return slices.reshape(batch, depth, chans, *target).transpose(1, 2)


def embed_volume(model: nn.Module, volumes: torch.Tensor) -> torch.Tensor:
    """Patch tokens of every axial slice of ``(B, C, D, H, W)`` volumes, all slices in one batch:
    ``(B, D, h, w, E)`` (in-plane sizes first fitted to the patch grid)."""
    volumes = fit_to_patch_grid(model, volumes)
    batch, chans, depth, height, width = volumes.shape
    patches = embed_patches(model, volumes.transpose(1, 2).reshape(batch * depth, chans, height, width))
    return patches.reshape(batch, depth, *patches.shape[1:])
