"""The diagnostic set is slice-blind by construction, and measurably so for the built-in ViT's slice-2D.

What is identical across classes, derived in ``liftbench.datasets.diagnostic``: (1) from one draw, the ``left``
volume is the ``right`` one reversed along depth, so the multiset of slice images per volume is the same
(slice for slice); (2) at every depth, the slice's distribution is the same for both classes (the disc's angle
is uniform). Each test has a partner that breaks the property and must be caught.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from liftbench import lifted_features
from liftbench.datasets import diagnostic
from liftbench.errors import UsageError
from liftbench.metrics import classification_metrics
from liftbench.plugin.manager import default_registry
from liftbench.protocols.evaluation import predict
from liftbench.protocols.linear import train_head
from liftbench.report.chance import accuracy_bounds, auc_bounds

SIZE = 16


def _slices(volume: np.ndarray) -> list[bytes]:
    return sorted(s.tobytes() for s in volume)


def test_left_is_right_reversed_so_every_volume_has_the_same_slices():
    for seed in range(5):
        right, right_mask = diagnostic.draw_volume(0, SIZE, np.random.default_rng(seed))
        left, left_mask = diagnostic.draw_volume(1, SIZE, np.random.default_rng(seed))
        assert np.array_equal(left, right[::-1]) and np.array_equal(left_mask, right_mask[::-1])
        assert _slices(left) == _slices(right)
        assert not np.array_equal(left, right)  # the classes do differ: in the slices' order
    # partner: a left helix drawn directly (the turns' sign flipped, same phase and noise) has other slices
    rng = np.random.default_rng(0)
    helix = diagnostic.draw_helix(SIZE, rng)
    noise = rng.normal(0.0, 0.05, (SIZE,) * 3)
    right = diagnostic.right_handed(helix, SIZE, noise)[0]
    direct_left = diagnostic.right_handed(replace(helix, turns=-helix.turns), SIZE, noise)[0]
    assert _slices(direct_left) != _slices(right)


def _centroids(masks: np.ndarray, depth: int) -> np.ndarray:
    """(row, column) centroid of each volume's tube in the slice at ``depth``."""
    grid = np.arange(masks.shape[-1]) + 0.5
    m = masks[:, depth].astype(float)
    return np.stack([(m.sum(2) * grid).sum(1) / m.sum((1, 2)), (m.sum(1) * grid).sum(1) / m.sum((1, 2))], axis=1)


def _ks_by_depth(masks: np.ndarray, labels: np.ndarray) -> float:
    """The smallest KS p-value, over depths and both centroid coordinates, of class 0 against class 1."""
    p = 1.0
    for depth in range(masks.shape[1]):
        c = _centroids(masks, depth)
        for axis in (0, 1):
            p = min(p, ks_2samp(c[labels == 0, axis], c[labels == 1, axis]).pvalue)
    return p


def test_every_depth_shows_the_same_distribution_for_both_classes():
    split = diagnostic.make_split(600, SIZE, seed=7)
    # 2 x 16 depths = 32 tests; at 0.001 each, a false alarm has probability about 3%, fixed by the seed
    assert _ks_by_depth(split.masks, split.labels) > 1e-3
    # partner: the same draws with a fixed starting phase — the disc's position then tells the class at each depth
    rng = np.random.default_rng(7)
    masks, labels = [], np.arange(600) % 2
    for label in labels:
        helix = replace(diagnostic.draw_helix(SIZE, rng), phase=0.0)
        mask = diagnostic.right_handed(helix, SIZE, np.zeros((SIZE,) * 3))[1]
        masks.append(mask[::-1] if label else mask)
    assert _ks_by_depth(np.stack(masks), labels) < 1e-12


def test_slice2d_features_do_not_depend_on_slice_order():
    volumes = diagnostic.make_split(4, 32, seed=3).volumes
    flipped = volumes[:, :, ::-1].copy()
    two_d = lifted_features("vit-tiny-shapes", "2d", volumes).pooled
    two_d_flipped = lifted_features("vit-tiny-shapes", "2d", flipped).pooled
    tolerance = 1e-5
    assert (two_d.flip(1) - two_d_flipped).abs().max() < tolerance  # slice for slice, in reverse
    pcg = lifted_features("vit-tiny-shapes", "pcg", volumes).pooled.mean(1)
    pcg_flipped = lifted_features("vit-tiny-shapes", "pcg", flipped).pooled.mean(1)
    assert (pcg - pcg_flipped).abs().max() > 100 * tolerance  # partner: a lifting that fuses depth sees the order


def _probe(dataset, seed: int = 0) -> dict[str, float]:
    """The linear protocol's head (slice pooling + linear, 1,000 steps) on slice-2D ViT features; test metrics."""
    features = {s: lifted_features("vit-tiny-shapes", "2d", dataset.splits[s].volumes) .pooled for s in ("train", "val", "test")}
    labels = {s: torch.as_tensor(dataset.splits[s].labels) for s in features}
    declared = default_registry().get("protocol", "linear").options
    options = {**{name: option.default for name, option in declared.items()}, "iterations": 1000, "warmup": 50}
    head = train_head(features, labels, 2, dataset.task, options, seed)[0]
    metrics = classification_metrics(predict(head, features["test"], dataset.task), labels["test"].numpy(), dataset.task)
    return {"auc": float(metrics["auc"]), "acc": float(metrics["acc"])}


def test_slice2d_with_the_linear_probe_is_at_chance():
    dataset = diagnostic.load(32, n_train=48, n_val=16, n_test=64)
    n1 = int(dataset.splits["test"].labels.sum())
    n0 = len(dataset.splits["test"]) - n1
    acc_low, acc_high = accuracy_bounds(n0, n1, alpha=0.01)  # 64 test volumes: ACC in [0.328, 0.672]
    auc_low, auc_high = auc_bounds(n0, n1, alpha=0.01)
    measured = _probe(dataset)
    assert acc_low <= measured["acc"] <= acc_high, (measured, (acc_low, acc_high))
    assert auc_low <= measured["auc"] <= auc_high, (measured, (auc_low, auc_high))
    # partner: a leak a single slice shows (no tube in left volumes) is far outside the bound
    leaky = {}
    for name, split in dataset.splits.items():
        gone = (split.masks[:, None] > 0) & (split.labels[:, None, None, None, None] == 1)
        leaky[name] = replace(split, volumes=np.where(gone, 64, split.volumes).astype(np.uint8))
    leaked = _probe(replace(dataset, splits=leaky))
    assert leaked["acc"] > acc_high and leaked["auc"] > auc_high, leaked


def test_chance_bounds_hold_for_a_label_blind_classifier():
    """The ACC bound is derived for any predictions independent of the labels; check its coverage by simulation."""
    rng = np.random.default_rng(0)
    low, high = accuracy_bounds(40, 40, alpha=0.05)
    labels = np.repeat([0, 1], 40)
    for rate in (0.1, 0.5, 0.9):  # a blind classifier predicting class 1 at any rate
        acc = np.array([((rng.random(80) < rate) == rng.permutation(labels)).mean() for _ in range(4000)])
        assert ((acc < low) | (acc > high)).mean() <= 0.05
    assert accuracy_bounds(400, 400)[1] - 0.5 < 0.5 * (high - 0.5)  # a larger test set: a tighter bound


def test_too_small_a_size_is_a_usage_error():
    with pytest.raises(UsageError, match="size >= 16"):
        diagnostic.load(8)
