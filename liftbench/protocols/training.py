"""Optimisation shared by the trained protocols: AdamW with linear warm-up then cosine decay."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then cosine annealing to zero at ``total_steps``."""
    warmup_steps = min(warmup_steps, max(total_steps - 1, 0))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def adamw(params, lr: float, weight_decay: float) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def fit_head(
    batch_features: Callable[[torch.Tensor], torch.Tensor],
    train_labels: torch.Tensor,
    val_features: torch.Tensor,
    val_labels: torch.Tensor,
    classes: int,
    task: str,
    options: dict,
    seed: int,
):
    """Train the paper's head on the features ``batch_features(index)`` gives for each training batch
    (cached features for ``linear``, augmented backbone features for ``linear-aug``); evaluate on the
    validation features at the end of every epoch and keep the best. Returns (head, best val AUC, step)."""
    from liftbench.protocols.evaluation import epoch_batches, predict, val_auc
    from liftbench.protocols.heads import make_head

    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    head = make_head(tuple(val_features.shape[1:]), classes)
    optimizer = adamw(head.parameters(), options["lr"], options["weight_decay"])
    scheduler = warmup_cosine(optimizer, options["iterations"], options["warmup"])
    batch = min(options["batch_size"], len(train_labels))
    best_auc, best_state, best_step = -math.inf, copy.deepcopy(head.state_dict()), 0
    for step, index, end_of_epoch in epoch_batches(len(train_labels), batch, options["iterations"], order):
        features = batch_features(index)
        head.train()
        loss = F.cross_entropy(head(features), train_labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if end_of_epoch:
            auc = val_auc(predict(head, val_features, task), val_labels, task, step + 1)
            if auc > best_auc:
                best_auc, best_state, best_step = auc, copy.deepcopy(head.state_dict()), step + 1
    head.load_state_dict(best_state)
    return head, best_auc, best_step
