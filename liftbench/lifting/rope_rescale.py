"""DINOv3's RoPE coordinate rescaling in train mode (``rescale_coords``), for liftbench's lifted ViTs.

Meta's DINOv3 builds its RoPE with ``rescale_coords=2``: in train mode, every time a RoPE embedding is
computed, the patch coordinates (already normalised to ``[-1, 1]``) are multiplied by one factor
``s = exp(u)``, ``u ~ Uniform(-log R, log R)`` — log-uniform in ``[1/R, R]``, one draw per computation, the
same ``s`` for every axis of that computation (H and W; D too for flatten-3D's 3D RoPE). In eval mode the
coordinates are left alone. timm's port of DINOv3 leaves the augmentation out, so a timm DINOv3 computes the
same RoPE in both modes.

This module puts it back for liftbench's lifted forwards, and only while asked::

    with rope_rescaling(lifted, 2.0, generator):
        lifted.train(); lifted(x)   # every RoPE computation draws its own factor from `generator`
        lifted.eval(); lifted(x)    # eval mode: the RoPE of the unmodified model

Outside the context (or with ``R = 1``) nothing changes. The lifters ask :func:`draw` for a factor where
they build a RoPE embedding (``vit_tokens.rope_for_grid``, flatten-3D's 3D RoPE) and, while rescaling is on
(:func:`active`), build it per block instead of reusing one embedding across blocks — the authors' blocks
each compute their own RoPE, so each block gets its own draw. The state is kept per 2D model in a
weak dictionary, never as an attribute of the model, so deep copies and state dicts are unaffected.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from weakref import WeakKeyDictionary

import torch
from torch import nn

from liftbench.errors import CannotLiftError, UsageError

ROPE_SEED = 2_000_003  # the protocols seed the rescaling generator with seed + this


@dataclass
class Rescale:
    """Draws ``exp(Uniform(-log factor, log factor))`` from ``generator``; ``calls`` counts the draws."""

    factor: float
    generator: torch.Generator
    calls: int = 0

    def draw(self) -> float:
        bound = math.log(self.factor)
        u = torch.empty(1, dtype=torch.float64).uniform_(-bound, bound, generator=self.generator)
        self.calls += 1
        return float(u.exp())


_RESCALES: WeakKeyDictionary[nn.Module, Rescale] = WeakKeyDictionary()


def _target(model: nn.Module) -> nn.Module:
    """The 2D model a lifted module wraps (the lifters test the 2D model's train flag)."""
    inner = getattr(model, "model", None)
    return inner if isinstance(inner, nn.Module) else model


def check_factor(factor: float) -> float:
    """``factor`` as a float, or a usage error unless it is finite and at least 1 (1 = off)."""
    factor = float(factor)
    if not math.isfinite(factor) or factor < 1:
        raise UsageError(f"rope_rescale must be a finite factor >= 1 (1 = off), got {factor}")
    return factor


@contextmanager
def rope_rescaling(model: nn.Module, factor: float, generator: torch.Generator | None = None) -> Iterator[Rescale | None]:
    """While open, ``model``'s lifted forwards rescale RoPE coordinates in train mode by a factor drawn
    log-uniformly in ``[1/factor, factor]`` per RoPE computation. ``factor == 1`` is off (yields None).
    ``model`` is a lifted module or its 2D model."""
    factor = check_factor(factor)
    if factor == 1:
        yield None
        return
    target = _target(model)
    previous = _RESCALES.get(target)
    rescale = Rescale(factor, generator if generator is not None else torch.Generator().manual_seed(0))
    _RESCALES[target] = rescale
    try:
        yield rescale
    finally:
        if previous is None:
            _RESCALES.pop(target, None)
        else:
            _RESCALES[target] = previous


def active(model: nn.Module) -> bool:
    """Whether ``model`` (a 2D model) rescales its RoPE now: a rescaling is open and it is in train mode."""
    return model.training and model in _RESCALES


def draw(model: nn.Module) -> float | None:
    """A fresh factor for one RoPE computation of ``model``, or None when rescaling is not active."""
    return _RESCALES[model].draw() if active(model) else None


def _check_dinov3_grid(rope: nn.Module) -> None:
    settings = (getattr(rope, "normalize_coords", "separate"), float(getattr(rope, "grid_offset", 0.0)), getattr(rope, "grid_indexing", "ij"))
    if not hasattr(rope, "periods") or settings != ("separate", 0.0, "ij"):
        raise CannotLiftError(
            f"RoPE coordinate rescaling needs DINOv3-style RoPE (periods, 'separate' coordinates, no offset, 'ij' grid); "
            f"{type(rope).__name__} has {settings}"
        )


def rope2d_embed(rope: nn.Module, grid: tuple[int, int], scale: float) -> torch.Tensor:
    """The embedding ``rope.get_embed(shape=grid)`` gives (timm's DINOv3 RoPE, ``[sin, cos]``,
    ``(a·b, 2·head_dim)``) with every coordinate multiplied by ``scale`` before the angle."""
    _check_dinov3_grid(rope)
    periods = rope.periods
    axes = []
    for length in grid:
        coords = (torch.arange(length, dtype=torch.float32) + 0.5) / length * 2.0 - 1.0
        axes.append(2 * math.pi * (coords * scale).to(periods.device, periods.dtype)[:, None] / periods[None, :])
    a, b = grid
    angles = torch.cat([axes[0][:, None, :].expand(a, b, -1), axes[1][None, :, :].expand(a, b, -1)], dim=-1).reshape(a * b, -1)

    def layout(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x], dim=-1) if rope.rotate_half else x.repeat_interleave(2, dim=-1)

    return torch.cat([layout(angles.sin()), layout(angles.cos())], dim=-1)
