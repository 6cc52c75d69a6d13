"""Counting FLOPs per volume with PyTorch's own counter, attention included on every device.

``torch.utils.flop_counter.FlopCounterMode`` counts an operator only if a formula is registered for
it. PyTorch registers the CUDA attention kernels (flash, memory-efficient, cuDNN) but not the CPU
flash kernel that ``F.scaled_dot_product_attention`` dispatches to on CPU
(``aten._scaled_dot_product_flash_attention_for_cpu``), so on CPU a ViT's attention — the very cost
that separates flatten-3D from slice-2D and PlaneCycle — would silently count as zero. We register
the same formulas PyTorch uses for its GPU kernels (forward ``4·B·H·Lq·Lk·d``, backward
``2·B·H·Lq·Lk·(3·d_qk + 2·d_v)``), so counts agree across devices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

aten = torch.ops.aten
_CPU_FORWARD = "_scaled_dot_product_flash_attention_for_cpu"
_CPU_BACKWARD = "_scaled_dot_product_flash_attention_for_cpu_backward"


def sdpa_forward_flops(query_shape, key_shape, value_shape) -> int:
    """``QKᵀ`` plus ``softmax(·)V`` as two batched matmuls: ``2·B·H·Lq·Lk·(d_qk + d_v)`` (softmax not counted).

    Key/value may have fewer heads than the query (grouped-query attention); the kernel broadcasts them,
    so the work is that of ``H_q`` heads, as in PyTorch's ``sdpa_flop_count``.
    """
    batch, heads, lq, dqk = query_shape
    lk = key_shape[-2]
    dv = value_shape[-1]
    return 2 * batch * heads * lq * lk * (dqk + dv)


def sdpa_backward_flops(grad_out_shape, query_shape, key_shape, value_shape) -> int:
    """Recomputed scores, then gradients of both matmuls: ``2·B·H·Lq·Lk·(3·d_qk + 2·d_v)`` (PyTorch's rule)."""
    batch, heads, lq, dqk = query_shape
    lk = key_shape[-2]
    dv = value_shape[-1]
    return 2 * batch * heads * lq * lk * (3 * dqk + 2 * dv)


def _cpu_forward_formula(query_shape, key_shape, value_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:
    return sdpa_forward_flops(query_shape, key_shape, value_shape)


def _cpu_backward_formula(grad_out_shape, query_shape, key_shape, value_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:
    return sdpa_backward_flops(grad_out_shape, query_shape, key_shape, value_shape)


def register_cpu_attention_formulas() -> list[str]:
    """Register the CPU flash-attention formulas (forward and, if present, backward); idempotent.

    Returns the names of the operators that now have a formula. An operator PyTorch already counts
    (a future release may add them) keeps PyTorch's own formula.
    """
    done = []
    for name, formula in ((_CPU_FORWARD, _cpu_forward_formula), (_CPU_BACKWARD, _cpu_backward_formula)):
        packet = getattr(aten, name, None)
        if packet is None:
            continue
        if packet not in flop_counter.flop_registry:
            register_flop_formula(packet)(formula)
        done.append(name)
    return done


def count_flops(fn: Callable[[], Any]) -> int:
    """Total FLOPs of calling ``fn()`` (forward, or forward + backward if ``fn`` does both)."""
    register_cpu_attention_formulas()
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def flops_by_operator(fn: Callable[[], Any]) -> dict[str, int]:
    """FLOPs of ``fn()`` per aten operator (for checking what was counted)."""
    register_cpu_attention_formulas()
    with FlopCounterMode(display=False) as counter:
        fn()
    totals = counter.get_flop_counts().get("Global", {})
    return {str(op): int(n) for op, n in totals.items()}
