"""``linear-aug`` (alias ``paper-probe``): the PlaneCycle paper's linear probe as published.

The same head as ``linear`` (slice pooling + linear; linear only for one-vector strategies) on a
frozen lifted backbone kept in eval mode, but every training step augments its batch (random crop
with padding 4, flips and 90° rotations in the axial plane: :mod:`liftbench.protocols.augment`) and
runs the backbone forward on it, so no feature cache is possible. AdamW, warm-up + cosine, lr 1e-3,
wd 1e-5; iterations, warm-up and batch size as ``linear``. Validation and test volumes are not
augmented: as the backbone is frozen their features are computed once, and the head is evaluated on
them at the end of every epoch; the epoch with the best validation AUC is kept and reported on test.

This is the slow reference the cached ``linear`` probe is measured against (benchmarks/probe_speed.py).
"""

from __future__ import annotations

import time

import torch

from liftbench.protocols.augment import AUGMENT_SEED, training_input
from liftbench.protocols.context import ProtocolResult, RunContext
from liftbench.protocols.evaluation import probe_result
from liftbench.protocols.features import autocast, extract
from liftbench.protocols.linear import DEFAULTS as LINEAR_DEFAULTS
from liftbench.protocols.options import resolve
from liftbench.protocols.training import fit_head

DEFAULTS = dict(LINEAR_DEFAULTS)  # the same options and paper values as the cached probe
QUICK = {"iterations": 20, "warmup": 2}


def train_augmented_head(lifted, train_volumes, labels: dict, val_features: torch.Tensor, classes: int, task: str, options: dict, seed: int, mean, std, device: str):
    """Train the head on augmented backbone features; returns (best head, best val AUC, best step)."""
    augmentation = torch.Generator().manual_seed(seed + AUGMENT_SEED)

    def batch_features(index: torch.Tensor) -> torch.Tensor:
        x = training_input(train_volumes, index, mean, std, augmentation).to(device)
        with torch.no_grad(), autocast(device, options["dtype"]):
            return lifted(x).pooled.float().cpu()

    return fit_head(batch_features, labels["train"], val_features, labels["val"], classes, task, options, seed)


def run(ctx: RunContext) -> ProtocolResult:
    options = resolve(DEFAULTS, QUICK, ctx.options)
    dataset = ctx.dataset()
    model, _ = ctx.backbone()
    mean, std = ctx.normalisation(model)
    labels = {split: torch.as_tensor(data.labels) for split, data in dataset.splits.items()}
    with ctx.lifted(model) as lifted:
        lifted.eval()  # frozen backbone in eval mode (the shared model already is; this only asserts it)
        start = time.perf_counter()
        features = {
            split: extract(lifted, dataset.splits[split].volumes, mean, std, options["feature_batch"], ctx.device, options["dtype"])
            for split in ("val", "test")
        }
        vps = sum(len(f) for f in features.values()) / max(time.perf_counter() - start, 1e-9)
        head, best_auc, step = train_augmented_head(
            lifted, dataset.splits["train"].volumes, labels, features["val"], dataset.num_classes, dataset.task,
            options, ctx.spec.seed, mean, std, ctx.device,
        )
    return probe_result(head, features, labels, dataset.task, best_auc, vps, {"backbone_mode": "eval", "augmentation": "crop pad 4 (HW), flips H/W, rot90 HW", "selected_step": step})
