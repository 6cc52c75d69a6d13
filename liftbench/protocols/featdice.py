"""``featdice``: zero-training segmentation quality of frozen lifted features (docs/segmentation.md).

The two procedures of :mod:`liftbench.segmentation.featdice` — lesion (binary masks: reference token,
min-max, threshold 0.9) and prototype (multi-class masks: per-class masked-mean prototypes, argmax) —
on the test split at the dataset's FeatDice in-plane size (LIDC: 640²). The lesion threshold is the
authors' 0.9 unless ``select_threshold`` chooses it on a validation split (carved from train when the
dataset has none); the test split never chooses anything. The per-volume Dice (every threshold tried,
or every class) is stored beside the run, like a classification run's probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from liftbench.errors import UsageError
from liftbench.precision import autocast
from liftbench.run.context import ProtocolResult, RunContext
from liftbench.segmentation import featdice as fd
from liftbench.segmentation.batches import batches, seg_batch
from liftbench.segmentation.dice import LIDC_THRESHOLDS, mean_dice, per_volume_dice, per_volume_frame
from liftbench.segmentation.splits import selection_splits


@torch.inference_mode()
def _scores(ctx: RunContext, lifted, dataset, split, procedure: str, reference: str, thresholds, options) -> np.ndarray:
    """Per volume: lesion Dice for each threshold ``(N, T)``, or per foreground class ``(N, K − 1)``."""
    model = lifted.model
    mean, std = ctx.normalisation(model)
    k = len(dataset.mask_names)
    rows = []
    for index in batches(len(split), options["feature_batch"]):
        x, masks = seg_batch(dataset, split, index, "featdice", mean, std)
        with autocast(ctx.device, options["dtype"]):
            patches = lifted(x.to(ctx.device)).patches
        for features, mask in zip(patches.float().cpu(), masks, strict=True):
            if procedure == "lesion":
                if not mask.any():
                    rows.append(np.full(len(thresholds), np.nan))
                    continue
                rows.append(fd.lesion_dice(fd.lesion_map(features, mask, reference), mask, thresholds))
            else:
                pred = fd.prototype_prediction(features, mask, k)
                rows.append(per_volume_dice(pred[None], mask[None], k)[0])
    width = len(thresholds) if procedure == "lesion" else k - 1
    return np.array(rows, dtype=float).reshape(-1, width)


def _frame(scores: np.ndarray, procedure: str, thresholds, names, ids) -> pd.DataFrame:
    columns = [f"t={t:g}" for t in thresholds] if procedure == "lesion" else list(names[1:])
    return per_volume_frame(scores, columns, ids)


def run(ctx: RunContext) -> ProtocolResult:
    options = ctx.options
    dataset = ctx.dataset()
    if not dataset.has_masks:
        raise UsageError(f"featdice needs masks; dataset {dataset.name!r} has none")
    names = dataset.mask_names
    procedure = fd.procedure_for(options["procedure"], len(names))
    if procedure == "lesion" and len(names) != 2:
        raise UsageError(f"procedure=lesion needs binary masks; dataset {dataset.name!r} has {len(names) - 1} mask classes (use procedure=prototype)")
    reference = options["reference"]
    if reference == "auto":
        reference = "centre" if dataset.info.get("lesion_centred") == "true" else "centroid"
    select = options["select_threshold"] and procedure == "lesion"
    thresholds = sorted({float(options["threshold"]), *(LIDC_THRESHOLDS if select else ())})
    model, _ = ctx.backbone()
    notes = {"procedure": procedure, "reference": reference if procedure == "lesion" else "", "inplane": dataset.inplane.get("featdice")}
    selected_on, threshold = "", float(options["threshold"])
    with ctx.lifted(model) as lifted:
        lifted.eval()
        if select:
            _, val, how = selection_splits(dataset, "val", options["val_fraction"], options["split_seed"])
            val_scores = _scores(ctx, lifted, dataset, val, procedure, reference, thresholds, options)
            means = [mean_dice(val_scores[:, [j]]) for j in range(len(thresholds))]
            if all(np.isnan(means)):
                raise UsageError(f"select_threshold: no validation volume of {dataset.name!r} has a non-empty mask")
            threshold = thresholds[int(np.nanargmax(means))]
            selected_on = how["selected_on"]
            notes.update({k: v for k, v in how.items() if k != "selected_on"})
        test = _scores(ctx, lifted, dataset, dataset.splits["test"], procedure, reference, thresholds, options)
    value = mean_dice(test[:, [thresholds.index(threshold)]] if procedure == "lesion" else test)
    metrics = [("test", "featdice", value)]
    if procedure == "lesion":
        notes["threshold"] = threshold
    if np.isnan(value):
        raise ValueError(f"featdice undefined: no test volume of {dataset.name!r} has a non-empty mask")
    scored = int((~np.isnan(test)).any(axis=1).sum())
    notes.update(volumes_scored=scored, volumes=len(test))
    return ProtocolResult(metrics=metrics, selected_on=selected_on, probabilities=_frame(test, procedure, thresholds, names, dataset.splits["test"].ids), notes=notes)
