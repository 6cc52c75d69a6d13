"""Memory a lifted backbone needs for inference, full fine-tuning and LoRA — planned on the meta device.

Why a model and not a measurement: the point is to plan a DINOv3-7B grid (6.7B parameters, 27 GB in fp32)
on a machine that cannot hold it. The lifted backbone is built on PyTorch's ``meta`` device (shapes, no
storage) and one forward of one volume is traced there, recording what every leaf module returns and what
every transformer block receives. From that, per volume, under **bf16 autocast with activation
checkpointing** (the settings a large run uses):

* ``inference``: bf16 weights (2 B/parameter) + the batch's live activations (``ACTIVATION_FACTOR`` × the
  largest module output, 2 B/value);
* ``finetune``: fp32 weights, gradients and AdamW's two moments (16 B/parameter: mixed precision as the
  protocols run it) + the activations a checkpointed backward keeps: every block's input, plus one block's
  leaf outputs while it is recomputed (a lifter without checkpointing — the CNN ones — keeps every leaf output);
* ``lora``: bf16 frozen weights + 16 B per LoRA parameter (rank 8 on the ``lora`` protocol's ``auto``
  targets, counted from the layer shapes exactly as peft sizes them) + the same activations as fine-tuning
  (gradients still flow back through every block).

Activations scale with the training batch; the figures are estimates (allocator slack, attention
workspaces and the head are not counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from liftbench.cost.estimate import ACTIVATION_FACTOR, _meta_lifted, meta_flops
from liftbench.plugin.registry import Registry

LORA_RANK = 8


@dataclass
class MemoryPlan:
    backbone: str
    strategy: str
    size: int
    batch: int
    parameters: int
    lora_parameters: int
    gflop_per_volume: float
    inference_mb: float
    finetune_mb: float
    lora_mb: float
    checkpointed: bool


def lora_parameter_count(model: torch.nn.Module, family: str, rank: int = LORA_RANK) -> int:
    """r·(in + out) per adapted Linear, r·(in·k·k + out) per adapted Conv2d (peft's sizes), on any device."""
    from liftbench.protocols.adapters import adaptable_layers

    modules = dict(model.named_modules())
    total = 0
    for path in adaptable_layers(model, family):
        layer = modules[path]
        if isinstance(layer, torch.nn.Linear):
            total += rank * (layer.in_features + layer.out_features)
        else:
            total += rank * (layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1] + layer.out_channels)
    return total


def plan_memory(registry: Registry, backbone: str, strategy: str, schedule: str, size: int, batch: int) -> MemoryPlan:
    """:class:`MemoryPlan` of one lifting at ``size``³ and training batch ``batch`` (module docstring)."""
    family = registry.get("backbone", backbone).family
    model, lifted = _meta_lifted(registry, backbone, strategy, schedule)
    blocks = list(getattr(model, "blocks", [])) if family == "vit" else []
    current = [-1]
    leaf_sum, block_inputs, per_block, largest = [0], [0], {}, [0]

    def enter(index):
        def hook(_module, inputs):
            current[0] = index
            block_inputs[0] += sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))

        return hook

    def leaf(_module, _inputs, output):
        n = sum(t.numel() for t in (output if isinstance(output, (tuple, list)) else [output]) if isinstance(t, torch.Tensor))
        leaf_sum[0] += n
        largest[0] = max(largest[0], n)
        per_block[current[0]] = per_block.get(current[0], 0) + n

    handles = [b.register_forward_pre_hook(enter(i)) for i, b in enumerate(blocks)]
    handles += [m.register_forward_hook(leaf) for m in model.modules() if not list(m.children())]
    flops = meta_flops(lifted, handles, 1, size)
    params = sum(p.numel() for p in model.parameters())
    lora = lora_parameter_count(model, family)
    checkpointed = bool(blocks)  # the ViT lifters checkpoint their blocks; the CNN lifters have no checkpointing
    kept = block_inputs[0] + max(per_block.values(), default=0) if checkpointed else leaf_sum[0]
    train_activations = 2 * kept * batch
    mb = 2**20
    return MemoryPlan(
        backbone=backbone, strategy=strategy, size=size, batch=batch, parameters=params, lora_parameters=lora,
        gflop_per_volume=flops / 1e9,
        inference_mb=(2 * params + 2 * ACTIVATION_FACTOR * largest[0] * batch) / mb,
        finetune_mb=(16 * params + train_activations) / mb,
        lora_mb=(2 * params + 16 * lora + train_activations) / mb,
        checkpointed=checkpointed,
    )  # fmt: skip


def plan_runs(registry: Registry, runs) -> list[MemoryPlan]:
    """One :class:`MemoryPlan` per (backbone, strategy, schedule, size) of the runs that will execute, at the
    training batch of its first run's protocol (``batch_size``, else 32)."""
    seen, out = set(), []
    for run in runs:
        s = run.spec
        key = (s.backbone, s.strategy, s.schedule, s.size)
        if run.skip_reason or key in seen:
            continue
        seen.add(key)
        batch = int(s.protocol_options.get("batch_size") or 32)
        out.append(plan_memory(registry, s.backbone, s.strategy, s.schedule, s.size, batch))
    return out


def render_memory(plans: list[MemoryPlan]) -> str:
    from tabulate import tabulate

    def gb(mb: float) -> str:
        return f"{mb / 1024:.1f}"

    rows = [[p.backbone, p.strategy, p.size, f"{p.parameters / 1e6:,.1f}", f"{p.lora_parameters / 1e6:,.2f}",
             f"{p.gflop_per_volume:,.1f}", p.batch, gb(p.inference_mb), gb(p.finetune_mb), gb(p.lora_mb),
             "yes" if p.checkpointed else "no (CNN)"] for p in plans]  # fmt: skip
    table = tabulate(rows, headers=["backbone", "strategy", "size", "params M", f"LoRA r{LORA_RANK} M", "GFLOP/vol",
                                    "batch", "infer GB", "finetune GB", "LoRA GB", "checkpointed"], tablefmt="simple")  # fmt: skip
    return (f"{table}\n\nmemory at the training batch, bf16 autocast + activation checkpointing (planned on the meta "
            "device, no weights allocated): inference = bf16 weights + live activations; finetune = fp32 weights, "
            "grads and AdamW moments + checkpointed activations; LoRA = bf16 frozen weights + adapters' 16 B/param "
            "+ the same activations")  # fmt: skip
