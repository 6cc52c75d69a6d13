"""Optimisation shared by the trained protocols: AdamW, the learning-rate schedule and the selection rule.

Two schedules (option ``lr_schedule``, docs/protocols.md):

* ``iterations`` — the paper's text: ``iterations`` optimizer steps, linear warm-up over ``warmup`` steps from
  ``lr/warmup`` to ``lr``, then cosine decay to zero, stepped after every optimizer step (:func:`warmup_cosine`).
* ``epochs`` — the authors' released code: ``epochs`` passes over the training set, the rate stepped once per
  epoch: torch's ``SequentialLR(LinearLR(start_factor=0.001, total_iters=warmup_epochs),
  CosineAnnealingLR(T_max=epochs - warmup_epochs, eta_min=1e-6))`` (:func:`code_epoch_lr`).

Two selection rules (option ``selection``): ``first-best`` keeps a new state only when its validation AUC is
strictly higher than the best so far (the earliest of tied epochs wins); ``last-best`` also on a tie
(``>=``, the authors' code: the latest of tied epochs wins).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

SCHEDULES = ("iterations", "epochs")
SELECTIONS = ("first-best", "last-best")
CODE_START_FACTOR = 0.001  # LinearLR(start_factor=0.001): the code's warm-up starts at lr / 1000
CODE_MIN_LR = 1e-6  # CosineAnnealingLR(eta_min=1e-6): the code's --min_lr default


def improves(auc: float, best: float, rule: str = "first-best") -> bool:
    """Whether a validation AUC replaces the best so far under the selection ``rule``."""
    if rule == "first-best":
        return auc > best
    if rule == "last-best":
        return auc >= best
    raise ValueError(f"unknown selection rule {rule!r}; valid: {', '.join(SELECTIONS)}")


def code_epoch_lr(epoch: int, epochs: int, warmup_epochs: int, lr: float, min_lr: float = CODE_MIN_LR) -> float:
    """The released code's learning rate during epoch ``epoch`` (0-based): its ``SequentialLR`` of a
    ``LinearLR`` warm-up (0.001·lr → lr over ``warmup_epochs`` epochs) and a ``CosineAnnealingLR``
    (``T_max = epochs − warmup_epochs``, ``eta_min = min_lr``), stepped once after every epoch."""
    if epoch < warmup_epochs:
        return lr * (CODE_START_FACTOR + (1.0 - CODE_START_FACTOR) * epoch / warmup_epochs)
    progress = (epoch - warmup_epochs) / max(epochs - warmup_epochs, 1)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def per_epoch_code_schedule(optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int, warmup_epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`code_epoch_lr` as a per-step scheduler: constant within an epoch, so stepping it after every
    optimizer step gives each step the rate of its epoch."""
    lr = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: code_epoch_lr(min(step // steps_per_epoch, epochs - 1), epochs, warmup_epochs, lr) / lr
    )


def schedule_plan(options: dict, steps_per_epoch: int) -> tuple[int, str]:
    """The number of optimizer steps of a run and a line describing its schedule (for the row's notes),
    from the options ``lr_schedule`` (default ``iterations``), ``iterations``/``warmup`` or
    ``epochs``/``warmup_epochs``; a usage error for values the schedule cannot take."""
    from liftbench.errors import UsageError

    kind = options.get("lr_schedule", "iterations")
    if kind == "iterations":
        return options["iterations"], f"iterations {options['iterations']}, warm-up {options['warmup']} steps, cosine to 0, stepped per step"
    if kind == "epochs":
        epochs, warmup = options["epochs"], options["warmup_epochs"]
        if epochs < 1 or not 0 <= warmup < epochs:
            raise UsageError(f"lr_schedule=epochs needs epochs >= 1 and 0 <= warmup_epochs < epochs; got epochs={epochs}, warmup_epochs={warmup}")
        return epochs * steps_per_epoch, (
            f"epochs {epochs} x {steps_per_epoch} steps, LinearLR(start 0.001) warm-up {warmup} epochs, "
            f"cosine to {CODE_MIN_LR:g}, stepped per epoch"
        )
    raise UsageError(f"unknown lr_schedule {kind!r}; valid: {', '.join(SCHEDULES)}")


def training_schedule(optimizer: torch.optim.Optimizer, options: dict, steps_per_epoch: int) -> tuple[torch.optim.lr_scheduler.LRScheduler, int]:
    """The run's scheduler, to step after every optimizer step, and its number of optimizer steps
    (:func:`schedule_plan`)."""
    total, _ = schedule_plan(options, steps_per_epoch)
    if options.get("lr_schedule", "iterations") == "epochs":
        return per_epoch_code_schedule(optimizer, steps_per_epoch, options["epochs"], options["warmup_epochs"]), total
    return warmup_cosine(optimizer, total, options["warmup"]), total


def settings_notes(options: dict, schedule: str) -> dict:
    """What a row's notes record of the choices where the authors' code and liftbench differ (the options
    column holds them too; these are the values the run used, ``schedule_detail`` spelled out)."""
    return {
        "lr_schedule": options.get("lr_schedule", "iterations"), "schedule_detail": schedule,
        "selection": options.get("selection", "first-best"), "padding": options.get("padding", "zeros"),
        "rope_rescale": options.get("rope_rescale", 1.0),
    }  # fmt: skip


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
    *,
    refresh_val: Callable[[], torch.Tensor] | None = None,
    on_best: Callable[[torch.nn.Module], None] | None = None,
):
    """Train the paper's head on the features ``batch_features(index)`` gives for each training batch
    (cached features for ``linear``, augmented backbone features for ``linear-aug``); evaluate on the
    validation features at the end of every epoch — or, with option ``eval_every`` N > 0, after every N
    steps and the last, so evaluation costs the same whatever the split sizes (a 6-volume training split
    ends an epoch every step) — and keep the best under the ``selection`` rule.
    ``refresh_val`` recomputes the validation features at each evaluation (a backbone whose state changes
    while training, e.g. BatchNorm statistics in train mode); ``on_best(head)`` runs whenever a state is
    selected. Returns (head, best val AUC, step)."""
    from liftbench.checks import check_finite
    from liftbench.protocols.evaluation import epoch_batches, predict, val_auc
    from liftbench.protocols.heads import make_head

    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    head = make_head(tuple(val_features.shape[1:]), classes)
    optimizer = adamw(head.parameters(), options["lr"], options["weight_decay"])
    batch = min(options["batch_size"], len(train_labels))
    scheduler, total_steps = training_schedule(optimizer, options, math.ceil(len(train_labels) / batch))
    rule = options.get("selection", "first-best")
    best_auc, best_state, best_step = -math.inf, copy.deepcopy(head.state_dict()), 0
    every = options.get("eval_every", 0)  # 0 (protocols that do not declare it): at each epoch's end
    for step, index, end_of_epoch in epoch_batches(len(train_labels), batch, total_steps, order):
        features = batch_features(index)
        head.train()
        loss = check_finite(F.cross_entropy(head(features), train_labels[index]), f"the training loss at step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if (end_of_epoch and not every) or (every and ((step + 1) % every == 0 or step + 1 == total_steps)):
            current = refresh_val() if refresh_val is not None else val_features
            auc = val_auc(predict(head, current, task), val_labels, task, step + 1)
            if improves(auc, best_auc, rule):
                best_auc, best_state, best_step = auc, copy.deepcopy(head.state_dict()), step + 1
                if on_best is not None:
                    on_best(head)
    head.load_state_dict(best_state)
    return head, best_auc, best_step
