"""What the trained protocols (``linear``, ``linear-aug``, ``finetune``) share: the epoch/batch order,
head predictions, and the report (metric rows + the test-set probabilities frame).

The batch order is the linear probe's: a fresh permutation of the training set per epoch, drawn from
a generator seeded by the run's seed, ``ceil(N / batch)`` steps per epoch; the model is evaluated on
the validation split at the end of every epoch (and after the last step).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch

from liftbench.errors import UndefinedMetricError
from liftbench.metrics import classification_metrics, probabilities_from_logits


@torch.no_grad()
def predict(head: torch.nn.Module, features: torch.Tensor, task: str) -> np.ndarray:
    """Class probabilities of ``head`` on ``features`` (head put in eval mode)."""
    head.eval()
    return probabilities_from_logits(head(features), task)


def epoch_batches(n: int, batch: int, iterations: int, generator: torch.Generator) -> Iterator[tuple[int, torch.Tensor, bool]]:
    """``(step, indices, end_of_epoch)`` for every step: one permutation per epoch, ``ceil(n / batch)``
    steps per epoch; ``end_of_epoch`` is also true on the very last step."""
    steps_per_epoch = math.ceil(n / batch)
    order = torch.randperm(n, generator=generator)
    for step in range(iterations):
        position = step % steps_per_epoch
        if position == 0 and step:
            order = torch.randperm(n, generator=generator)
        index = order[position * batch : (position + 1) * batch]
        yield step, index, position == steps_per_epoch - 1 or step == iterations - 1


def val_auc(probs: np.ndarray, labels: torch.Tensor | np.ndarray, task: str, step: int | None = None) -> float:
    """Validation AUC, the selection metric; raises :class:`UndefinedMetricError` when it is NaN (one
    class in the split, or non-finite predictions), so a run never keeps an untrained head silently."""
    auc = classification_metrics(probs, np.asarray(labels), task)["auc"]
    if not math.isfinite(auc):
        labels = np.array(labels.tolist() if hasattr(labels, "tolist") else labels)
        at = f" at step {step}" if step is not None else ""
        raise UndefinedMetricError(
            f"validation AUC is undefined{at} (value {auc}; {len(labels)} validation volumes, "
            f"{len(np.unique(labels))} distinct label(s), finite predictions: {bool(np.isfinite(np.asarray(probs, dtype=float)).all())}); "
            "model selection needs every class in the validation split and finite outputs"
        )
    return auc


def report(
    val_probs: np.ndarray, test_probs: np.ndarray, labels: dict, task: str, selected_val_auc: float
) -> tuple[list[tuple[str, str, float]], pd.DataFrame]:
    """Metric rows (val AUC of the selected epoch, val ACC, test AUC/ACC) and the test probabilities
    frame (``index``, ``label``, ``p0..pK-1``), exactly as the ``linear`` protocol has always written them.
    A test metric that is undefined (a test split holding one class) raises :class:`UndefinedMetricError`:
    the run fails saying why instead of recording ok with NaN."""
    metrics = [("val", "auc", float(selected_val_auc))]
    val_scores = classification_metrics(val_probs, np.asarray(labels["val"]), task)
    metrics.append(("val", "acc", float(val_scores["acc"])))
    test_labels = np.asarray(labels["test"])
    test_scores = classification_metrics(test_probs, test_labels, task)
    undefined = [name for name, value in test_scores.items() if not math.isfinite(value)]
    if undefined:
        raise UndefinedMetricError(
            f"test {', '.join(undefined).upper()} is undefined ({len(test_labels)} test volume(s), "
            f"{len(np.unique(test_labels))} distinct label(s): {sorted(np.unique(test_labels).tolist())[:10]}, "
            f"finite predictions: {bool(np.isfinite(np.asarray(test_probs, dtype=float)).all())}); "
            "test AUC needs every class among the test split's labels"
        )
    metrics += [("test", name, float(value)) for name, value in test_scores.items()]
    probabilities = pd.DataFrame(test_probs, columns=[f"p{k}" for k in range(test_probs.shape[1])])
    probabilities.insert(0, "label", test_labels)
    probabilities.insert(0, "index", np.arange(len(test_probs)))
    return metrics, probabilities


def probe_result(head: torch.nn.Module, features: dict, labels: dict, task: str, selected_val_auc: float, volumes_per_second: float, notes: dict):
    """A probe's ProtocolResult: the head's val/test predictions, reported by :func:`report`."""
    from liftbench.run.context import ProtocolResult

    probs = {split: predict(head, features[split], task) for split in ("val", "test")}
    metrics, probabilities = report(probs["val"], probs["test"], labels, task, selected_val_auc)
    return ProtocolResult(metrics=metrics, selected_on="val", volumes_per_second=volumes_per_second, probabilities=probabilities, notes=notes)
