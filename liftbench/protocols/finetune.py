"""``finetune`` (alias ``ft``) and ``table2-finetune``: every parameter of the lifted backbone and the head trained.

The paper's recipe: AdamW, lr 5e-5, wd 0.05, linear warm-up then cosine, 10k iterations with 500
warm-up, the same head as the probes, the probe's augmentation (``augment``, default on). The
backbone is a fresh copy (``ctx.backbone(fresh=True)``, built after seeding torch with the run's
seed), so the model the other protocols share is never touched.

Options for a real GPU:

* ``dtype=bf16`` — bf16 autocast for the forward passes (the loss is computed in fp32);
* ``checkpoint=true`` — activation checkpointing of the transformer blocks, for lifters that take
  ``checkpoint=True`` (the ViT lifters); CNN lifters have none, and the option is ignored with a note
  in the log;
* ``accumulate=K`` — gradient accumulation: each optimizer step's batch of ``batch_size`` volumes is
  run as K micro-batches (losses weighted by their share), so the recipe (effective batch, number of
  optimizer steps) stays the same while activation memory drops about K-fold.

Selection: at the end of every epoch the model (eval mode) computes validation features afresh and
the head scores them; when the validation AUC improves (``selection``: ``first-best``, strictly higher, or
``last-best``, higher or equal), the test set's probabilities are computed right then and kept, instead of
a copy of the backbone. Test AUC/ACC of the selected epoch are reported.

``table2-finetune`` runs this code with the defaults of the authors' released code (plugins/protocols.py):
``lr_schedule=epochs`` (100 epochs, 10 warm-up, LinearLR + cosine stepped per epoch), ``selection=last-best``,
``padding=reflect`` and ``rope_rescale=2`` (DINOv3's RoPE coordinate rescaling while the backbone trains:
:mod:`liftbench.lifting.rope_rescale`). ``finetune`` keeps the paper's text (10k iterations, 500 warm-up)
and liftbench's choices.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from liftbench.api import backbone_family, extract
from liftbench.checks import check_finite
from liftbench.errors import UsageError
from liftbench.lifting.base import Lifted
from liftbench.lifting.rope_rescale import ROPE_SEED, check_factor, rope_rescaling
from liftbench.metrics import probabilities_from_logits
from liftbench.precision import autocast
from liftbench.protocols.augment import AUGMENT_SEED, training_input
from liftbench.protocols.evaluation import epoch_batches, report, val_auc
from liftbench.protocols.heads import make_head
from liftbench.protocols.training import adamw, improves, schedule_plan, settings_notes, training_schedule
from liftbench.run.context import ProtocolResult, RunContext


def lift_for_training(ctx: RunContext, model: torch.nn.Module, checkpoint: bool) -> Lifted:
    """Lift with the run's strategy; with activation checkpointing where the lifter supports it."""
    if checkpoint:
        entry = ctx.resolved.strategy
        family = backbone_family(model)
        if family in entry.families:
            lifter = entry.load(family)
            if "checkpoint" in inspect.signature(lifter).parameters:
                return ctx.lift(model, checkpoint=True)
            ctx.log(f"note: {getattr(lifter, '__name__', lifter)} ({entry.name}, {family}) has no activation checkpointing; option checkpoint ignored")
    return ctx.lift(model)


def _numpy(probs) -> np.ndarray:
    return probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)


@torch.no_grad()
def _probabilities(lifted: Lifted, head: torch.nn.Module, volumes, mean, std, options: dict, device: str, task: str) -> np.ndarray:
    lifted.eval()
    head.eval()
    features = extract(lifted, volumes, mean, std, options["feature_batch"], device, options["dtype"])
    return _numpy(probabilities_from_logits(head(features.to(device)).float(), task))


def run(ctx: RunContext, adapt: Callable[[torch.nn.Module], Any] | None = None) -> ProtocolResult:
    """Fine-tune; with ``adapt`` (:mod:`liftbench.protocols.lora`), only what it leaves trainable.

    ``adapt(model)`` changes the fresh 2D model in place before lifting (LoRA: adapters added, the rest
    frozen) and returns an object with ``trainable_count()`` (the count the optimizer's backbone parameters
    must equal), ``notes()`` (for the row) and ``merged()`` (a context to evaluate in, when ``merge_eval``).
    """
    options = ctx.options
    if options["accumulate"] < 1:
        raise UsageError(f"option accumulate must be at least 1, got {options['accumulate']}")
    check_factor(options["rope_rescale"])
    dataset, device, seed = ctx.dataset(), ctx.device, ctx.spec.seed
    task = dataset.task
    torch.manual_seed(seed)
    model, _ = ctx.backbone(fresh=True)
    mean, std = ctx.normalisation(model)
    labels = {split: torch.as_tensor(data.labels) for split, data in dataset.splits.items()}
    train, val, test = (dataset.splits[s] for s in ("train", "val", "test"))
    batch = min(options["batch_size"], len(train))
    _, schedule = schedule_plan(options, math.ceil(len(train) / batch))
    adapter = adapt(model) if adapt is not None else None
    lifted = lift_for_training(ctx, model, options["checkpoint"])
    backbone_params = [p for p in lifted.parameters() if p.requires_grad]
    if adapter is not None and sum(p.numel() for p in backbone_params) != adapter.trainable_count():
        raise RuntimeError(f"the lifted backbone trains {sum(p.numel() for p in backbone_params)} parameters, "
                           f"peft counts {adapter.trainable_count()}")  # fmt: skip
    evaluating = adapter.merged if adapter is not None and options.get("merge_eval") else nullcontext
    rescaling = ExitStack()
    try:
        lifted.to(device)
        with torch.no_grad():
            shape = tuple(extract(lifted.eval(), val.volumes[:1], mean, std, 1, device, options["dtype"]).shape[1:])
        head = make_head(shape, dataset.num_classes).to(device)
        optimizer = adamw([*backbone_params, *head.parameters()], options["lr"], options["weight_decay"])
        scheduler, total_steps = training_schedule(optimizer, options, math.ceil(len(train) / batch))
        order = torch.Generator().manual_seed(seed)
        augmentation = torch.Generator().manual_seed(seed + AUGMENT_SEED) if options["augment"] else None
        # DINOv3's RoPE coordinate rescaling in the training forwards (off with rope_rescale=1; eval forwards never)
        rescaling.enter_context(rope_rescaling(lifted, options["rope_rescale"], torch.Generator().manual_seed(seed + ROPE_SEED)))
        best = {"auc": -math.inf, "step": 0, "val": None, "test": None}
        train_time, trained, eval_time, evaluated = 0.0, 0, 0.0, 0
        for step, index, end_of_epoch in epoch_batches(len(train), batch, total_steps, order):
            start = time.perf_counter()
            lifted.train()
            head.train()
            optimizer.zero_grad(set_to_none=True)
            for chunk in index.split(math.ceil(len(index) / options["accumulate"])):
                x = training_input(train.volumes, chunk, mean, std, augmentation, options["padding"]).to(device)
                with autocast(device, options["dtype"]):
                    logits = head(lifted(x).pooled)
                loss = F.cross_entropy(logits.float(), labels["train"][chunk].to(device)) * (len(chunk) / len(index))
                check_finite(loss.detach(), f"the training loss at step {step + 1}")
                loss.backward()
            optimizer.step()
            scheduler.step()
            train_time, trained = train_time + time.perf_counter() - start, trained + len(index)
            if end_of_epoch:
                start = time.perf_counter()
                with evaluating():
                    val_probs = _probabilities(lifted, head, val.volumes, mean, std, options, device, task)
                    eval_time, evaluated = eval_time + time.perf_counter() - start, evaluated + len(val)
                    auc = val_auc(val_probs, labels["val"], task, step + 1)
                    if improves(auc, best["auc"], options["selection"]):
                        test_probs = _probabilities(lifted, head, test.volumes, mean, std, options, device, task)
                        best = {"auc": auc, "step": step + 1, "val": val_probs, "test": test_probs}
    finally:
        rescaling.close()
        lifted.unlift()
    metrics, probabilities = report(best["val"], best["test"], labels, task, best["auc"])
    return ProtocolResult(
        metrics=metrics,
        selected_on="val",
        volumes_per_second=evaluated / max(eval_time, 1e-9),
        probabilities=probabilities,
        notes={
            "backbone_mode": "train", "selected_step": best["step"], "train_volumes_per_second": trained / max(train_time, 1e-9),
            "checkpoint": bool(options["checkpoint"]), "accumulate": options["accumulate"], "dtype": options["dtype"],
            **settings_notes(options, schedule),
            "trainable_parameters": sum(p.numel() for p in [*backbone_params, *head.parameters()]),
            **({"merge_eval": bool(options.get("merge_eval"))} | adapter.notes() if adapter is not None else {}),
        },
    )
