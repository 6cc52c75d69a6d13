"""``linear``: linear probing on cached frozen features (the fast protocol).

The lifted backbone runs once per (dataset, size, backbone, weights, strategy, schedule) in eval
mode; its pooled features are cached on disk (:mod:`liftbench.protocols.features`) and every seed
trains only the paper's head on them: AdamW, warm-up + cosine, lr 1e-3, wd 1e-5, 10k iterations with
500 warm-up. The epoch with the best validation AUC is kept; test AUC and ACC are reported.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from liftbench.protocols.context import ProtocolResult, RunContext
from liftbench.protocols.evaluation import epoch_batches, predict, report, val_auc
from liftbench.protocols.features import cached_features
from liftbench.protocols.heads import make_head
from liftbench.protocols.options import resolve
from liftbench.protocols.training import adamw, warmup_cosine

DEFAULTS = {"iterations": 10000, "warmup": 500, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-5, "feature_batch": 4, "dtype": "fp32"}
QUICK = {"iterations": 300, "warmup": 30}


def train_head(features: dict, labels: dict, classes: int, task: str, options: dict, seed: int):
    """Train the paper's head on cached features; returns (best head, best val AUC, best step)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_x, train_y = features["train"], labels["train"]
    head = make_head(tuple(train_x.shape[1:]), classes)
    optimizer = adamw(head.parameters(), options["lr"], options["weight_decay"])
    scheduler = warmup_cosine(optimizer, options["iterations"], options["warmup"])
    batch = min(options["batch_size"], len(train_x))
    best_auc, best_state, best_step = -math.inf, copy.deepcopy(head.state_dict()), 0
    for step, index, end_of_epoch in epoch_batches(len(train_x), batch, options["iterations"], generator):
        head.train()
        loss = F.cross_entropy(head(train_x[index]), train_y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if end_of_epoch:
            auc = val_auc(predict(head, features["val"], task), labels["val"], task)
            if auc > best_auc:
                best_auc, best_state, best_step = auc, copy.deepcopy(head.state_dict()), step + 1
    head.load_state_dict(best_state)
    return head, best_auc, best_step


def run(ctx: RunContext) -> ProtocolResult:
    options = resolve(DEFAULTS, QUICK, ctx.options)
    dataset = ctx.dataset()
    model, weights = ctx.backbone()
    mean, std = ctx.normalisation(model)
    parts = {
        "dataset": ctx.spec.dataset,
        "size": ctx.spec.size,
        "dataset_options": ctx.spec.dataset_options,
        "backbone": ctx.spec.backbone,
        "weights": weights.source,
        "weights_sha256": weights.sha256,
        "strategy": ctx.spec.strategy,
        "schedule": ctx.spec.schedule,
        "mode": "eval",
        "dtype": options["dtype"],
    }
    with ctx.lifted(model) as lifted:
        features, vps, hit = cached_features(
            ctx.cache_dir, parts, lifted, dataset, mean, std,
            batch_size=options["feature_batch"], device=ctx.device, dtype=options["dtype"], log=ctx.log,
        )
    labels = {split: torch.as_tensor(dataset.splits[split].labels) for split in features}
    head, best_auc, step = train_head(features, labels, dataset.num_classes, dataset.task, options, ctx.spec.seed)
    probs = {split: predict(head, features[split], dataset.task) for split in ("val", "test")}
    metrics, probabilities = report(probs["val"], probs["test"], labels, dataset.task, best_auc)
    return ProtocolResult(
        metrics=metrics,
        selected_on="val",
        volumes_per_second=vps,
        probabilities=probabilities,
        notes={"feature_cache": "hit" if hit else "miss", "selected_step": step},
    )
