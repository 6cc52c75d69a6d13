"""``classification_metrics`` agrees with MedMNIST's own ``getAUC``/``getACC`` (what papers report)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from medmnist.evaluator import getACC, getAUC

from liftbench.metrics import classification_metrics, probabilities_from_logits


def _probs(rng: np.random.Generator, n: int, k: int, labels: np.ndarray) -> np.ndarray:
    """Softmax of noisy logits that lean towards the true class (so AUC/ACC are not all ~chance)."""
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += rng.uniform(0, 2)
    return probabilities_from_logits(logits, "multi-class" if k > 2 else "binary-class")


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("task", "k", "n"), [("binary-class", 2, 97), ("multi-class", 3, 120), ("multi-class", 11, 400)]
)
def test_matches_medmnist_evaluator(seed, task, k, n):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    probs = _probs(rng, n, k, labels)
    ours = classification_metrics(probs, labels, task)
    # medmnist's Evaluator gets labels as (N, 1), the npz layout
    assert ours["auc"] == pytest.approx(getAUC(labels[:, None], probs, task), abs=1e-6)
    assert ours["acc"] == pytest.approx(getACC(labels[:, None], probs, task), abs=1e-6)
    assert 0 <= ours["acc"] <= 1 and 0 <= ours["auc"] <= 1


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("task", "k"), [("binary-class", 2), ("multi-class", 3), ("multi-class", 11)])
def test_matches_on_unnormalised_scores_and_ties(seed, task, k):
    """Scores in [0, 1] that are not rows of a softmax, rounded so that many tie."""
    rng = np.random.default_rng(100 + seed)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, 200 - k)])
    scores = np.round(rng.uniform(size=(200, k)), 1)
    ours = classification_metrics(torch.from_numpy(scores), torch.from_numpy(labels), task)
    assert ours["auc"] == pytest.approx(getAUC(labels, scores, task), abs=1e-6)
    assert ours["acc"] == pytest.approx(getACC(labels, scores, task), abs=1e-6)


def test_binary_single_column_scores():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 50)
    labels[:2] = (0, 1)
    p1 = rng.uniform(size=50)
    ours = classification_metrics(p1, labels, "binary-class")
    assert ours["auc"] == pytest.approx(getAUC(labels, p1, "binary-class"), abs=1e-6)
    assert ours["acc"] == pytest.approx(getACC(labels, p1, "binary-class"), abs=1e-6)
    assert classification_metrics(p1[:, None], labels, "binary-class") == ours


def test_absent_class_gives_nan_auc_not_a_crash():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 30)  # class 2 never occurs
    probs = probabilities_from_logits(rng.normal(size=(30, 3)), "multi-class")
    out = classification_metrics(probs, labels, "multi-class")
    assert math.isnan(out["auc"])
    assert out["acc"] == pytest.approx(getACC(labels, probs, "multi-class"))
    one_class = classification_metrics(np.full((4, 2), 0.5), np.zeros(4, dtype=int), "binary-class")
    assert math.isnan(one_class["auc"]) and one_class["acc"] == 1.0  # 0.5 is not > 0.5: all predicted 0


def test_rejects_logits_and_bad_task():
    with pytest.raises(ValueError, match="probabilities"):
        classification_metrics(np.array([[2.0, -1.0], [0.5, 0.1]]), np.array([0, 1]), "binary-class")
    with pytest.raises(ValueError, match="task"):
        classification_metrics(np.full((2, 2), 0.5), np.array([0, 1]), "multi-label, binary-class")


@pytest.mark.parametrize(("task", "k"), [("binary-class", 2), ("multi-class", 3), ("multi-class", 11)])
def test_probabilities_from_logits_rows_sum_to_one(task, k):
    logits = np.random.default_rng(k).normal(scale=5, size=(64, k))
    probs = probabilities_from_logits(logits, task)
    assert isinstance(probs, np.ndarray) and probs.shape == (64, k)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert (probs >= 0).all() and (probs <= 1).all()
    as_tensor = probabilities_from_logits(torch.from_numpy(logits).float(), task)
    assert isinstance(as_tensor, torch.Tensor)
    torch.testing.assert_close(as_tensor.sum(dim=1), torch.ones(64, dtype=as_tensor.dtype))
    np.testing.assert_array_equal(probs.argmax(1), logits.argmax(1))


def test_single_binary_logit_uses_sigmoid():
    logits = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(probabilities_from_logits(logits, "binary-class"), 1 / (1 + np.exp(-logits)))
