"""3D rotary position embedding for flatten-3D, built the way DINOv3's 2D RoPE is (docs/strategies.md).

The ``head_dim/2`` frequency pairs are split into (D, H, W) sections — ``(8, 12, 12)`` for head_dim 64.
A section of ``n`` pairs has periods ``base**(j/n)``; each axis' coordinate is ``(i + 0.5)/len`` mapped
to [-1, 1]; angle = ``2π · coord / period``. Angles are laid out like timm's DINOv3 RoPE (half layout:
angles concatenated with themselves) and returned as ``[sin, cos]``: ``(D·h·w, 2·head_dim)``. The 2D
RoPE has no learned parameters, so nothing pretrained is dropped.
"""

from __future__ import annotations

import math

import torch


def rope3d_sections(head_dim: int) -> tuple[int, int, int]:
    """Pairs per axis: a quarter to depth, the rest split between H and W (64 → (8, 12, 12))."""
    pairs = head_dim // 2
    depth = pairs // 4
    height = (pairs - depth) // 2
    return depth, height, pairs - depth - height


def _axis_angles(length: int, pairs: int, base: float) -> torch.Tensor:
    coords = (torch.arange(length, dtype=torch.float32) + 0.5) / length * 2.0 - 1.0
    periods = base ** (torch.arange(pairs, dtype=torch.float32) / pairs)
    return 2 * math.pi * coords[:, None] / periods[None, :]


def rope3d_embed(
    grid: tuple[int, int, int],
    head_dim: int,
    base: float = 100.0,
    sections: tuple[int, int, int] | None = None,
    rotate_half: bool = True,
    scale: float = 1.0,
) -> torch.Tensor:
    """RoPE for a ``(D, h, w)`` token grid in row-major order: ``(D·h·w, 2·head_dim)``, float32.
    ``scale`` multiplies every coordinate, hence every angle (DINOv3's train-mode rescaling; 1 = none)."""
    sections = sections or rope3d_sections(head_dim)
    if sum(sections) * 2 != head_dim:
        raise ValueError(f"RoPE sections {sections} must add up to head_dim/2 = {head_dim // 2}")
    depth, height, width = grid
    a_d = _axis_angles(depth, sections[0], base)[:, None, None, :].expand(depth, height, width, -1)
    a_h = _axis_angles(height, sections[1], base)[None, :, None, :].expand(depth, height, width, -1)
    a_w = _axis_angles(width, sections[2], base)[None, None, :, :].expand(depth, height, width, -1)
    angles = torch.cat([a_d, a_h, a_w], dim=-1).reshape(depth * height * width, -1)
    if scale != 1.0:  # train-mode rescaling (liftbench.lifting.rope_rescale): angles are linear in the coordinates
        angles = angles * scale
    angles = torch.cat([angles, angles], dim=-1) if rotate_half else angles.repeat_interleave(2, dim=-1)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
