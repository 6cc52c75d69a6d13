"""Deliberately wrong liftings, made by monkeypatching the library's own seams, and the error measure.

Every exactness test (library == an independent reference, to a tolerance) has a *mutation partner*: the
same comparison against the library with one of these bugs planted must miss by at least
``MUTATION_FACTOR`` times the tolerance. That proves the comparison would catch the bug in the library's
code — on weights where every block matters (``conftest.py``), a wrong plane moves the output by far more
than float rounding does.

Each mutation is ``fn(mp: pytest.MonkeyPatch)``: it replaces one module attribute the library looks up at
call time (a plane table lookup, a pooling method, a RoPE builder ...), so the library code itself runs,
wrong in exactly one place. Mutations of PlaneCycle-CNN must be applied *before* lifting (blocks are
patched onto their planes at lift time); the others act at forward time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from liftbench.lifting import (
    cnn_acs,
    cnn_convnext,
    cnn_inflate,
    cnn_layers,
    cnn_planecycle,
    cnn_slice2d,
    cnn_volume,
    rope3d,
    vit_flatten3d,
    vit_planecycle,
    vit_tokens,
)

# A mutation must move the compared output by at least this many tolerances.
MUTATION_FACTOR = 100

Output = torch.Tensor | tuple[torch.Tensor, ...]


def scaled_error(got: Output, expected: Output) -> float:
    """``max |got - expected| / max |expected|`` over all tensors; ``inf`` when a shape differs.

    Scale-free, so one tolerance serves feature maps of any magnitude (ViT tokens after the final norm are
    O(1), ResNet features O(10)).
    """
    got = got if isinstance(got, tuple) else (got,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    worst = 0.0
    for a, b in zip(got, expected, strict=True):
        if a.shape != b.shape:
            return math.inf
        a, b = a.detach().double(), b.detach().double()
        worst = max(worst, float((a - b).abs().max() / b.abs().max()))
    return worst


def assert_close_to(got: Output, expected: Output, tol: float) -> float:
    err = scaled_error(got, expected)
    assert err <= tol, f"scaled error {err:.3g} > tolerance {tol:.3g}"
    return err


def assert_caught(wrong: Output, expected: Output, tol: float, request: pytest.FixtureRequest | None = None) -> float:
    """The mutated lifting's output misses the reference by >= MUTATION_FACTOR tolerances (or in shape).

    With ``request``, the ratio is kept in the test's ``user_properties`` (shown by ``--junitxml``).
    """
    err = scaled_error(wrong, expected)
    if request is not None:
        ratio = "shape differs" if math.isinf(err) else f"{err / tol:.3g}"
        request.node.user_properties.append(("error_over_tolerance", ratio))
    assert err >= MUTATION_FACTOR * tol, (
        f"the mutation moved the output by only {err:.3g} = {err / tol:.3g} tolerances (< {MUTATION_FACTOR})"
    )
    return err


# ------------------------------------------------------------------------------------------------ planes

_SWAP = {"HW": "HW", "DW": "DH", "DH": "DW"}
_NEXT = {"HW": "DW", "DW": "DH", "DH": "HW"}


def _all_hw(schedule, index):
    return "HW"


def _shifted(schedule, index):
    return schedule[(index + 1) % len(schedule)]


def _swapped(schedule, index):
    return _SWAP[schedule[index % len(schedule)]]


def _block1_next_plane(schedule, index):
    plane = schedule[index % len(schedule)]
    return _NEXT[plane] if index == 1 else plane


def _block1_on_dw(schedule, index):
    return "DW" if index == 1 else schedule[index % len(schedule)]


# --------------------------------------------------------------------------------------------- ViT seams


def _vit_enter_mean(self, globals_, count):
    return globals_.mean(dim=1, keepdim=True).expand(-1, count, -1, -1)


def _vit_enter_adaptive(self, globals_, count):
    return vit_planecycle.pool_slices(globals_, count)


def _transposed_plane_rope(mp):
    original = vit_tokens.rope_for_grid
    mp.setattr(vit_tokens, "rope_for_grid", lambda model, grid: original(model, tuple(grid)[::-1]))


def _reversed_slices(mp):
    original = vit_tokens.fit_to_patch_grid
    mp.setattr(vit_tokens, "fit_to_patch_grid", lambda model, volumes: original(model, volumes).flip(2))


def _checkpoint_drops_kwargs(mp):
    mp.setattr(vit_tokens, "checkpoint", lambda fn, x, use_reentrant=False, **kwargs: fn(x))


# ------------------------------------------------------------------------------------------ 3D RoPE seams


def _rope_builder(mp, build):
    """Replace ``rope3d_embed`` where the library calls it (flatten-3D) and where tests call it."""
    original = rope3d.rope3d_embed
    wrapped = build(original)
    mp.setattr(rope3d, "rope3d_embed", wrapped)
    mp.setattr(vit_flatten3d, "rope3d_embed", wrapped)


def _rope_base_10000(mp):
    _rope_builder(mp, lambda orig: lambda grid, head_dim, base=100.0, **kw: orig(grid, head_dim, base=10000.0, **kw))


def _rope_hw_swapped(mp):
    """H coordinates drive the W section and vice versa (the grid's H and W axes mixed up)."""

    def build(orig):
        def embed(grid, head_dim, **kw):
            depth, height, width = grid
            swapped = orig((depth, width, height), head_dim, **kw)
            return swapped.reshape(depth, width, height, -1).transpose(1, 2).reshape(depth * height * width, -1)

        return embed

    _rope_builder(mp, build)


def _rope_interleaved(mp):
    _rope_builder(mp, lambda orig: lambda grid, head_dim, **kw: orig(grid, head_dim, **{**kw, "rotate_half": False}))


def _rope_uncentred_coords(mp):
    def angles(length, pairs, base):
        coords = torch.arange(length, dtype=torch.float32) / length * 2.0 - 1.0
        periods = base ** (torch.arange(pairs, dtype=torch.float32) / pairs)
        return 2 * math.pi * coords[:, None] / periods[None, :]

    mp.setattr(rope3d, "_axis_angles", angles)


# ------------------------------------------------------------------------------------------ CNN op seams


def _conv3d_kernel_transposed(x, weight, *args, **kwargs):
    """conv3d with each kernel's two non-singleton spatial axes transposed (a k×k kernel read as its transpose)."""
    axes = [dim for dim in (2, 3, 4) if weight.shape[dim] != 1]
    if len(axes) == 2:
        weight = weight.transpose(*axes)
    return F.conv3d(x, weight, *args, **kwargs)


def _batch_norm_without_weight(x, running_mean, running_var, weight, bias, *args, **kwargs):
    return F.batch_norm(x, running_mean, running_var, None, bias, *args, **kwargs)


def _functional_with(**overrides) -> SimpleNamespace:
    """A stand-in for ``torch.nn.functional`` with some functions replaced."""
    functions = {name: getattr(F, name) for name in dir(F) if not name.startswith("__")}
    return SimpleNamespace(**{**functions, **overrides})


def _slices_transposed(mp):
    """Every axial slice handed to the 2D CNN as (W, H) instead of (H, W)."""
    original = cnn_layers.volumes_to_slices
    wrong = lambda volumes: original(volumes).transpose(-2, -1)  # noqa: E731
    mp.setattr(cnn_slice2d, "volumes_to_slices", wrong)
    mp.setattr(cnn_planecycle, "volumes_to_slices", wrong)


def _acs_remainder_last(mp):
    original = cnn_acs.acs_split
    mp.setattr(cnn_acs, "acs_split", lambda channels: tuple(reversed(original(channels))))


def _inflate_not_divided(mp):
    mp.setattr(cnn_inflate, "inflate_weight", lambda weight, depth: weight.unsqueeze(2).expand(-1, -1, depth, -1, -1))



MUTATIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    # ViT PlaneCycle (forward time)
    "vit.all-blocks-HW": lambda mp: mp.setattr(vit_planecycle, "plane_for_block", _all_hw),  # PCg = slice-2D
    "vit.schedule-shifted-by-one": lambda mp: mp.setattr(vit_planecycle, "plane_for_block", _shifted),
    "vit.DW-DH-swapped": lambda mp: mp.setattr(vit_planecycle, "plane_for_block", _swapped),
    "vit.block1-on-DW": lambda mp: mp.setattr(vit_planecycle, "plane_for_block", _block1_on_dw),
    "vit.PCm-pooling-for-PCg": lambda mp: mp.setattr(vit_planecycle.PlaneCycleViT, "_enter", _vit_enter_mean),
    "vit.PCg-pooling-for-PCm": lambda mp: mp.setattr(vit_planecycle.PlaneCycleViT, "_enter", _vit_enter_adaptive),
    "vit.plane-rope-grid-transposed": _transposed_plane_rope,  # RoPE of a (b, a) grid on an (a, b) slice
    "vit.slices-reversed": _reversed_slices,  # axial slices fed in reverse depth order
    "vit.abs-pos-dropped": lambda mp: mp.setattr(vit_tokens, "abs_pos_for_grid", lambda model, grid: None),
    "vit.checkpoint-drops-rope": _checkpoint_drops_kwargs,  # the checkpointed block call forgets rope=
    # flatten-3D RoPE (rope3d_embed and what flatten-3D passes it)
    "rope3d.sections-12-12-8": lambda mp: mp.setattr(rope3d, "rope3d_sections", lambda head_dim: (12, 12, 8)),
    "rope3d.sections-12-8-12": lambda mp: mp.setattr(rope3d, "rope3d_sections", lambda head_dim: (12, 8, 12)),
    "rope3d.HW-swapped": _rope_hw_swapped,  # W coordinates in the H section and vice versa
    "rope3d.base-10000": _rope_base_10000,
    "rope3d.interleaved": _rope_interleaved,  # angles repeat-interleaved instead of timm's half layout
    "rope3d.uncentred-coords": _rope_uncentred_coords,  # i/len instead of (i + 0.5)/len
    "rope3d.dropped": lambda mp: mp.setattr(vit_flatten3d.Flatten3DViT, "_rope", lambda self, grid, device: None),
    # CNN PlaneCycle (lift time)
    "cnn.all-blocks-HW": lambda mp: mp.setattr(cnn_planecycle, "plane_for_block", _all_hw),
    "cnn.schedule-shifted-by-one": lambda mp: mp.setattr(cnn_planecycle, "plane_for_block", _shifted),
    "cnn.DW-DH-swapped": lambda mp: mp.setattr(cnn_planecycle, "plane_for_block", _swapped),
    "cnn.block1-next-plane": lambda mp: mp.setattr(cnn_planecycle, "plane_for_block", _block1_next_plane),
    "cnn.slices-transposed": _slices_transposed,  # each axial slice handed to the 2D CNN as (W, H)
    # CNN operators
    "acs.remainder-to-last-groups": _acs_remainder_last,  # split c//3, c//3, c//3+r instead of c//3+1, ...
    "acs.kernels-transposed": lambda mp: mp.setattr(cnn_acs, "F", _functional_with(conv3d=_conv3d_kernel_transposed)),
    "i3d.kernel-not-divided": _inflate_not_divided,  # I3D kernel repeated k times without dividing by k
    "bn5d.weight-ignored": lambda mp: mp.setattr(cnn_volume, "F", _functional_with(batch_norm=_batch_norm_without_weight)),
    # ConvNeXt blocks on volumes (forward time)
    "convnext.layer-scale-dropped": lambda mp: mp.setattr(cnn_convnext, "layer_scale", lambda block, x: x),
}


def mutated(mp: pytest.MonkeyPatch, name: str) -> None:
    """Plant mutation ``name`` (a key of :data:`MUTATIONS`) for the life of ``mp``."""
    MUTATIONS[name](mp)
