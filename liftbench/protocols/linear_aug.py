"""``linear-aug`` (alias ``paper-probe``) and ``table1-probe``: the PlaneCycle paper's augmented linear probe.

The same head as ``linear`` (slice pooling + linear; linear only for one-vector strategies) on a frozen
lifted backbone, but every training step augments its batch (random crop with padding 4, flips and 90°
rotations in the axial plane: :mod:`liftbench.protocols.augment`) and runs the backbone forward on it, so
no feature cache is possible. AdamW, lr 1e-3, wd 1e-5, batch 32. Validation and test volumes are not
augmented and always go through the backbone in eval mode; the epoch with the best validation AUC is kept
and reported on test.

Both protocols run this code; they differ in their option defaults (plugins/protocols.py,
docs/protocols.md), which carry the five points where the authors' released code differs from
liftbench's probe:

* ``lr_schedule`` — ``iterations`` (the paper's text: ``iterations``/``warmup`` steps, per-step warm-up +
  cosine) or ``epochs`` (the code: ``epochs``/``warmup_epochs``, LinearLR + cosine stepped per epoch);
* ``selection`` — ``first-best`` (``>``) or ``last-best`` (``>=``, the code);
* ``padding`` — the crop pads with ``zeros`` or by ``reflect`` (the code);
* ``backbone_mode`` — the frozen backbone runs the training batches in ``eval`` or ``train`` mode (the code
  calls ``model.train()``): for DINOv3 that switches on RoPE coordinate rescaling (``rope_rescale``, the
  factor R of :mod:`liftbench.lifting.rope_rescale`; 2 in Meta's DINOv3), for BatchNorm backbones it uses
  batch statistics and updates the running statistics — so then the backbone is a private copy, and the
  validation features are recomputed (eval mode) at every epoch and the test features whenever an epoch
  is selected, as the code's per-epoch evaluation of its ``model`` does.

With a frozen backbone whose state train mode does not change (a ViT), the validation and test features
are computed once. ``linear-aug`` is also the slow reference the cached ``linear`` probe is measured against
(benchmarks/probe_speed.py).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from liftbench.api import extract
from liftbench.lifting.rope_rescale import ROPE_SEED, check_factor, rope_rescaling
from liftbench.metrics import probabilities_from_logits
from liftbench.precision import autocast
from liftbench.protocols.augment import AUGMENT_SEED, training_input
from liftbench.protocols.evaluation import probe_result, report
from liftbench.protocols.training import fit_head, schedule_plan, settings_notes
from liftbench.run.context import ProtocolResult, RunContext

AUGMENTATION = "crop pad 4 (HW), flips H/W, rot90 HW"


def changes_in_train_mode(model: nn.Module) -> bool:
    """Whether running ``model`` in train mode changes its state: BatchNorm layers tracking running statistics."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules())


def train_augmented_head(lifted, train_volumes, labels: dict, val_features: torch.Tensor, classes: int, task: str, options: dict, seed: int, mean, std, device: str, *, refresh_val=None, on_best=None):
    """Train the head on augmented backbone features; returns (best head, best val AUC, best step).

    Training batches go through the backbone in ``options["backbone_mode"]`` (default eval) and are padded
    with ``options["padding"]`` (default zeros); the backbone is left in eval mode after every batch."""
    augmentation = torch.Generator().manual_seed(seed + AUGMENT_SEED)
    train_mode = options.get("backbone_mode", "eval") == "train"
    pad_mode = options.get("padding", "zeros")

    def batch_features(index: torch.Tensor) -> torch.Tensor:
        x = training_input(train_volumes, index, mean, std, augmentation, pad_mode).to(device)
        lifted.train(train_mode)
        try:
            with torch.no_grad(), autocast(device, options["dtype"]):
                return lifted(x).pooled.float().cpu()
        finally:
            lifted.eval()

    return fit_head(batch_features, labels["train"], val_features, labels["val"], classes, task, options, seed, refresh_val=refresh_val, on_best=on_best)


def run(ctx: RunContext) -> ProtocolResult:
    options = ctx.options
    dataset, device, seed = ctx.dataset(), ctx.device, ctx.spec.seed
    mode = options.get("backbone_mode", "eval")
    if check_factor(options.get("rope_rescale", 1.0)) != 1 and mode == "eval":
        ctx.log("note: rope_rescale acts only while the backbone is in train mode; with backbone_mode=eval it changes nothing")
    model, _ = ctx.backbone()
    private = mode == "train" and changes_in_train_mode(model)
    if private:  # train mode would move the shared model's BatchNorm statistics: a copy of its own
        torch.manual_seed(seed)
        model, _ = ctx.backbone(fresh=True)
    mean, std = ctx.normalisation(model)
    labels = {split: torch.as_tensor(data.labels) for split, data in dataset.splits.items()}
    batch = min(options["batch_size"], len(labels["train"]))
    _, schedule = schedule_plan(options, math.ceil(len(labels["train"]) / batch))
    notes = {"backbone_mode": mode, "augmentation": AUGMENTATION, **settings_notes(options, schedule)}

    def features_of(lifted, split: str) -> torch.Tensor:
        lifted.eval()
        return extract(lifted, dataset.splits[split].volumes, mean, std, options["feature_batch"], device, options["dtype"])

    with ctx.lifted(model) as lifted:
        try:
            lifted.eval()
            start = time.perf_counter()
            features = {split: features_of(lifted, split) for split in ("val", "test")}
            vps = sum(len(f) for f in features.values()) / max(time.perf_counter() - start, 1e-9)
            kept: dict = {}

            def refresh_val() -> torch.Tensor:
                kept["val"] = features_of(lifted, "val")
                return kept["val"]

            def on_best(head: nn.Module) -> None:
                head.eval()
                with torch.no_grad():
                    kept["probs"] = {"val": probabilities_from_logits(head(kept["val"]), dataset.task),
                                     "test": probabilities_from_logits(head(features_of(lifted, "test")), dataset.task)}  # fmt: skip

            with rope_rescaling(lifted, options.get("rope_rescale", 1.0), torch.Generator().manual_seed(seed + ROPE_SEED)):
                head, best_auc, step = train_augmented_head(
                    lifted, dataset.splits["train"].volumes, labels, features["val"], dataset.num_classes, dataset.task,
                    options, seed, mean, std, device,
                    refresh_val=refresh_val if private else None, on_best=on_best if private else None,
                )  # fmt: skip
        finally:
            lifted.eval()
    notes["selected_step"] = step
    if not private:
        return probe_result(head, features, labels, dataset.task, best_auc, vps, notes)
    probs = {split: np.asarray(kept["probs"][split]) for split in ("val", "test")}
    metrics, probabilities = report(probs["val"], probs["test"], labels, dataset.task, best_auc)
    notes["features"] = "validation recomputed every epoch (BatchNorm statistics move in train mode); test at each selection"
    return ProtocolResult(metrics=metrics, selected_on="val", volumes_per_second=vps, probabilities=probabilities, notes=notes)
