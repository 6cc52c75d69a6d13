"""One training step of the segmentation protocols, built so ``liftbench bench --seg`` can time it.

Why a copy of the step rather than a call into :mod:`liftbench.protocols.segment`: the protocol's step is
inside a training loop that needs a dataset, a schedule and scoring; the bench needs only the update
itself, on synthetic volumes, repeated. What is copied is exactly what costs time and memory there:

* the lifted backbone's dense patch maps of the last block (``configure(lifted, "last")`` + ``dense_maps``);
* ``ProgressiveUpHead(C, K or 1, hidden=512)`` with the protocol's default dropout, logits at the input's
  (D, H, W);
* ``seg_loss`` (binary BCE + Dice with one logit channel for 2 classes, 0.5·CE + Dice otherwise), backward,
  gradient clipping where the protocol clips, AdamW step.

``frozen`` is ``seg-linear``: the backbone in eval mode under ``torch.no_grad()`` (bf16 autocast on the
backbone only, maps cast back to fp32), only the head in the optimizer. ``finetune`` is ``seg-finetune``:
everything trains, the backbone in its own AdamW group at 0.1× the head's learning rate, autocast over
backbone and head. The learning rates and weight decays are the protocols' defaults (plugins/protocols.py);
cost does not depend on their values, but clipping and dropout do cost a little, so they are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch

from liftbench.precision import autocast
from liftbench.segmentation.decoder import ProgressiveUpHead, up_blocks_for
from liftbench.segmentation.dense import configure, dense_maps
from liftbench.segmentation.losses import seg_loss

SEG_MODES = ("frozen", "finetune")
HIDDEN = 512
# The protocols' defaults (plugins/protocols.py SEG_LINEAR / SEG_FINETUNE).
RECIPE = {
    "frozen": {"lr": 1e-4, "weight_decay": 1e-3, "dropout": 0.0, "grad_clip": 0.0, "backbone_lr_scale": 0.0},
    "finetune": {"lr": 1e-4, "weight_decay": 1e-3, "dropout": 0.2, "grad_clip": 0.8, "backbone_lr_scale": 0.1},
}


def seg_targets(batch: int, size: int, classes: int, device: str) -> torch.Tensor:
    """Random label maps ``(B, S, S, S)`` in ``0..classes−1`` (a binary mask for 2 classes), seeded."""
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, classes, (batch, size, size, size), generator=gen).to(device)


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def state_bytes(modules: list[torch.nn.Module], optimizer: torch.optim.Optimizer) -> int:
    """Bytes held between steps: every parameter, every gradient kept, and the optimizer's moments."""
    params = {id(p): p for m in modules for p in m.parameters()}
    total = sum(p.numel() * p.element_size() for p in params.values())
    total += sum(p.grad.numel() * p.grad.element_size() for p in params.values() if p.grad is not None)
    for state in optimizer.state.values():
        total += sum(t.numel() * t.element_size() for t in state.values() if isinstance(t, torch.Tensor))
    return total


def make_seg_step(
    lifted: torch.nn.Module, volumes: torch.Tensor, mode: str, classes: int, dtype: str, device: str
) -> tuple[Callable[[], None], Callable[[], dict[str, float]]]:
    """The step (a closure) and a function giving its size metrics (call it after the first step).

    Training steps change the (random) weights; time, memory and FLOPs do not depend on their values.
    """
    if mode not in SEG_MODES:
        raise ValueError(f"segmentation mode {mode!r}: use {' or '.join(SEG_MODES)}")
    finetune, recipe = mode == "finetune", RECIPE[mode]
    configure(lifted, "last")
    with torch.no_grad(), autocast(device, dtype):
        probe = dense_maps(lifted.eval(), volumes[:1])
    channels = sum(m.shape[1] for m in probe)
    out_channels = 1 if classes == 2 else classes
    up_blocks = up_blocks_for(probe[0].shape[-1], volumes.shape[-1])  # as the protocols choose it (4 for patch 16)
    head = ProgressiveUpHead(channels, out_channels, hidden=HIDDEN, dropout=recipe["dropout"], up_blocks=up_blocks).to(device)
    groups = [{"params": list(head.parameters()), "lr": recipe["lr"]}]
    if finetune:
        groups.append({"params": list(lifted.parameters()), "lr": recipe["lr"] * recipe["backbone_lr_scale"]})
    optimizer = torch.optim.AdamW(groups, lr=recipe["lr"], betas=(0.9, 0.999), weight_decay=recipe["weight_decay"])
    target = seg_targets(volumes.shape[0], volumes.shape[2], classes, device)
    size = tuple(target.shape[1:])

    def step() -> None:
        head.train()
        lifted.train() if finetune else lifted.eval()
        with nullcontext() if finetune else torch.no_grad(), autocast(device, dtype):
            maps = dense_maps(lifted, volumes)
        if not finetune:
            maps = [m.float() for m in maps]
        with autocast(device, dtype) if finetune else nullcontext():
            logits = head(maps, size=size)
        loss = seg_loss(logits.float(), target, classes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], recipe["grad_clip"])
        optimizer.step()

    def sizes() -> dict[str, Any]:
        trainable = count_parameters(head) + (count_parameters(lifted) if finetune else 0)
        return {"head_parameters": count_parameters(head), "trainable_parameters": trainable,
                "state_memory_mb": state_bytes([lifted, head], optimizer) / 2**20}  # fmt: skip

    return step, sizes
