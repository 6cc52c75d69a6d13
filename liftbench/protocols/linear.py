"""``linear``: linear probing on cached frozen features (the fast protocol).

The lifted backbone runs once per (dataset, size, backbone, weights, strategy, schedule) in eval
mode; its pooled features are cached on disk (:mod:`liftbench.run.feature_cache`) and every seed
trains only the paper's head on them: AdamW, warm-up + cosine, lr 1e-3, wd 1e-5, 10k iterations with
500 warm-up. The epoch with the best validation AUC is kept; test AUC and ACC are reported.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from liftbench.protocols.evaluation import probe_result
from liftbench.protocols.training import fit_head
from liftbench.run.context import ProtocolResult, RunContext
from liftbench.run.feature_cache import cached_features
from liftbench.run.inputs import data_fingerprint


@contextmanager
def one_thread():
    """Run the block on one CPU thread. The head's matmuls are tiny: extra threads only add hand-offs,
    and on a loaded machine (a Slurm node, CI) a second thread waiting for a core makes every step
    several times slower. Measured on a busy 2-core CPU: 1,000 head steps took 4.0 s on one thread
    and 16.8 s on two. The thread count is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_head(features: dict, labels: dict, classes: int, task: str, options: dict, seed: int):
    """Train the paper's head on cached features; returns (best head, best val AUC, best step)."""
    train_x = features["train"]
    with one_thread():
        return fit_head(lambda index: train_x[index], labels["train"], features["val"], labels["val"], classes, task, options, seed)


def run(ctx: RunContext) -> ProtocolResult:
    options = ctx.options
    dataset = ctx.dataset()
    model, weights = ctx.backbone()
    mean, std = ctx.normalisation(model)
    parts = {
        "dataset": ctx.spec.dataset,
        "size": ctx.spec.size,
        "dataset_options": ctx.spec.dataset_options,
        "data": data_fingerprint(dataset),
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
            batch_size=options["feature_batch"], device=ctx.device, dtype=options["dtype"], log=ctx.detail,
            refresh=ctx.refresh,
        )
    labels = {split: torch.as_tensor(dataset.splits[split].labels) for split in features}
    head, best_auc, step = train_head(features, labels, dataset.num_classes, dataset.task, options, ctx.spec.seed)
    return probe_result(head, features, labels, dataset.task, best_auc, vps, {"feature_cache": "hit" if hit else "miss", "selected_step": step})
