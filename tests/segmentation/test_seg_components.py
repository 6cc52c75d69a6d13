"""The segmentation building blocks compute what the authors' released code computes (Table 3).

Each check compares against an independent computation (a hand formula, or MONAI called the authors' way) and
has a mutation partner — the plausible wrong variant — that must land far outside the tolerance, so the test
can tell the right semantics from a near miss.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.metrics import DiceMetric

from liftbench.segmentation.decoder import ProgressiveUpHead
from liftbench.segmentation.dice import LIDC_THRESHOLDS, mean_dice, per_volume_dice, threshold_sweep
from liftbench.segmentation.losses import (
    binary_seg_loss,
    binary_soft_dice,
    multiclass_dice_loss,
    multiclass_seg_loss,
    seg_loss,
)
from liftbench.segmentation.schedule import lr_factor, scheduler

# --------------------------------------------------------------------------------------------------- decoder


@pytest.mark.parametrize(
    ("channels", "classes", "expected"),
    [
        (384, 1, 7_250_593),
        (384, 6, 7_250_758),
        (768, 1, 7_447_969),
        (768, 6, 7_448_134),
        (1024, 1, 7_579_553),
        (1024, 6, 7_579_718),
    ],
)
def test_head_parameter_counts(channels, classes, expected):
    head = ProgressiveUpHead(channels, classes)
    assert sum(p.numel() for p in head.parameters() if p.requires_grad) == expected


def test_head_layout_and_init():
    head = ProgressiveUpHead(24, 3, hidden=64)
    widths = [block[1].out_channels for block in head.up]
    assert widths == [32, 16, 8, 4]
    assert [block[2].num_groups for block in head.up] == [8, 8, 8, 4]  # GroupNorm(min(8, o), o)
    assert head.input_norm.num_groups == 1 and head.input_norm.affine
    assert torch.count_nonzero(head.classifier.bias) == 0
    assert all(m.bias is None for m in head.modules() if isinstance(m, torch.nn.Conv3d) and m is not head.classifier)


def test_head_output_shape_and_list_input():
    torch.manual_seed(0)
    head = ProgressiveUpHead(8, 2, hidden=32).eval()
    x = torch.randn(2, 8, 3, 2, 3)
    out = head(x)
    assert out.shape == (2, 2, 3, 32, 48)
    # A list of layers is concatenated on channels, as the authors' ``cat``.
    assert torch.equal(head([x[:, :5], x[:, 5:]]), out)


def test_head_size_interpolation():
    torch.manual_seed(0)
    head = ProgressiveUpHead(8, 2, hidden=32).eval()
    x = torch.randn(1, 8, 2, 1, 1)
    native = head(x)
    assert torch.equal(head(x, size=native.shape[2:]), native)  # same size: untouched
    resized = head(x, size=(4, 8, 8))
    assert resized.shape == (1, 2, 4, 8, 8)
    expected = F.interpolate(native, size=(4, 8, 8), mode="trilinear", align_corners=False)
    torch.testing.assert_close(resized, expected, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------- losses


def test_binary_soft_dice_by_hand():
    logits = torch.tensor([[0.0, 2.0, -1.0, 1.0], [math.log(3), -math.log(3), 0.0, 0.0]]).view(2, 1, 1, 2, 2)
    target = torch.tensor([[0, 1, 0, 1], [1, 0, 0, 1]]).view(2, 1, 2, 2)
    s = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    # Sample 0: p = (0.5, s(2), s(-1), s(1)); t = (0, 1, 0, 1).
    p0 = [0.5, s(2), s(-1), s(1)]
    d0 = 1 - (2 * (p0[1] + p0[3]) + 1) / (sum(p0) + 2 + 1)
    # Sample 1: p = (0.75, 0.25, 0.5, 0.5); t = (1, 0, 0, 1).
    d1 = 1 - (2 * (0.75 + 0.5) + 1) / (2.0 + 2 + 1)
    assert binary_soft_dice(logits, target).item() == pytest.approx((d0 + d1) / 2, abs=1e-6)
    # Mutation partner: the usual tiny smoothing (1e-5) instead of 1.
    d0_small = 1 - (2 * (p0[1] + p0[3]) + 1e-5) / (sum(p0) + 2 + 1e-5)
    d1_small = 1 - (2 * 1.25 + 1e-5) / (4.0 + 1e-5)
    assert abs((d0_small + d1_small) / 2 - (d0 + d1) / 2) > 1e-2


def test_binary_loss_is_bce_plus_dice():
    torch.manual_seed(0)
    logits = torch.randn(3, 1, 2, 4, 4)
    target = (torch.rand(3, 2, 4, 4) > 0.6).long()
    bce = F.binary_cross_entropy_with_logits(logits, target.unsqueeze(1).float())
    total = bce + binary_soft_dice(logits, target)
    torch.testing.assert_close(binary_seg_loss(logits, target), total)
    torch.testing.assert_close(binary_seg_loss(logits, target.unsqueeze(1)), total)  # (B, 1, ...) target
    torch.testing.assert_close(seg_loss(logits, target, num_classes=1), total)
    torch.testing.assert_close(seg_loss(logits, target, num_classes=2), total)  # binary as one channel
    torch.testing.assert_close(seg_loss(logits, target, 1, ce_weight=0.0), binary_soft_dice(logits, target))


def _independent_multiclass_dice(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    k = logits.shape[1]
    p = torch.softmax(logits, 1)[:, 1:].flatten(2)  # softmax over all classes, then drop background
    t = F.one_hot(labels, k).movedim(-1, 1)[:, 1:].flatten(2).float()
    dice = (2 * (p * t).sum(2) + 1e-5) / (p.sum(2) + t.sum(2) + 1e-5)
    return (1 - dice).mean()


def test_multiclass_dice_against_formula_and_mutation():
    torch.manual_seed(1)
    logits = 3 * torch.randn(2, 4, 3, 5, 5)
    labels = torch.randint(0, 4, (2, 3, 5, 5))
    labels[1][labels[1] == 2] = 0  # an empty class: MONAI still scores it (loss, not metric)
    ours = multiclass_dice_loss(logits, labels)
    torch.testing.assert_close(ours, _independent_multiclass_dice(logits, labels), rtol=0, atol=1e-6)
    # Mutation partners: background included; softmax over foreground channels only.
    k = logits.shape[1]
    p = torch.softmax(logits, 1).flatten(2)
    t = F.one_hot(labels, k).movedim(-1, 1).flatten(2).float()
    with_background = (1 - (2 * (p * t).sum(2) + 1e-5) / (p.sum(2) + t.sum(2) + 1e-5)).mean()
    fg_softmax = _independent_multiclass_dice(
        torch.cat([torch.full_like(logits[:, :1], -1e4), logits[:, 1:]], 1), labels
    )
    assert abs(ours - with_background) > 1e-2
    assert abs(ours - fg_softmax) > 1e-2


def test_multiclass_loss_weights_and_targets():
    torch.manual_seed(2)
    logits = torch.randn(2, 6, 2, 4, 4)
    labels = torch.randint(0, 6, (2, 2, 4, 4))
    expected = 0.5 * F.cross_entropy(logits, labels) + _independent_multiclass_dice(logits, labels)
    torch.testing.assert_close(multiclass_seg_loss(logits, labels), expected, rtol=0, atol=1e-6)
    one_hot = F.one_hot(labels, 6).movedim(-1, 1)
    torch.testing.assert_close(seg_loss(logits, one_hot, num_classes=6), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(seg_loss(logits, labels.unsqueeze(1), 6), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        seg_loss(logits, labels, num_classes=5)


# -------------------------------------------------------------------------------------------------- schedule


@pytest.mark.parametrize(
    ("step", "expected"), [(500, 0.4875), (999, 0.9491), (1000, 0.9938), (10000, 0.4999), (19999, 0.0)]
)
def test_lr_factor_reference_values(step, expected):
    assert lr_factor(step, 20000, 1000) == pytest.approx(expected, abs=5e-5)


def test_lr_factor_edges():
    assert lr_factor(0, 20000, 1000) == pytest.approx(1e-6)
    assert lr_factor(20000, 20000, 1000) == 0.0
    assert lr_factor(0, 100, 0) == pytest.approx((1 + math.cos(math.pi / 100)) / 2)


def test_lambda_lr_per_group():
    head, backbone = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW([{"params": backbone.parameters(), "lr": 1e-5}, {"params": head.parameters(), "lr": 1e-4}])
    sched = scheduler(opt, total=20, warmup=4)
    for step in range(20):
        factor = lr_factor(step, 20, 4)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-5 * factor, 1e-4 * factor], rel=1e-12)
        opt.step()
        sched.step()


# ------------------------------------------------------------------------------------------------------ Dice


def _labels(rng: np.random.Generator, n: int, k: int, shape=(3, 6, 6)) -> np.ndarray:
    return rng.integers(0, k, size=(n, *shape))


def _monai_batch_mean(pred, truth, k, **kwargs) -> float:
    metric = DiceMetric(reduction="mean", **kwargs)
    one = lambda x: F.one_hot(torch.as_tensor(x).long(), k).movedim(-1, 1)  # noqa: E731
    metric(one(pred), one(truth))
    return float(metric.aggregate())


def test_per_volume_dice_matches_monai_batch_mean():
    rng = np.random.default_rng(0)
    k = 4
    truth = _labels(rng, 6, k)
    pred = np.where(rng.random(truth.shape) < 0.6, truth, _labels(rng, 6, k))
    truth[1][truth[1] == 2] = 0  # a volume with an empty class
    truth[2][truth[2] == 3] = 1
    truth[3] = 0  # an all-background volume: no valid class at all
    pred[4][pred[4] == 1] = 0  # a class present in the truth but never predicted: Dice 0
    per_volume = per_volume_dice(pred, truth, k)
    assert per_volume.shape == (6, k - 1)
    assert np.isnan(per_volume[1, 1]) and np.isnan(per_volume[2, 2]) and np.isnan(per_volume[3]).all()
    assert per_volume[4, 0] == 0.0
    ours = mean_dice(per_volume)
    assert ours == pytest.approx(_monai_batch_mean(pred, truth, k, include_background=False), abs=1e-6)
    # Mutation partners: background included; empty classes counted (MONAI scores them 1 or 0).
    assert abs(ours - _monai_batch_mean(pred, truth, k, include_background=True)) > 1e-2
    assert abs(ours - _monai_batch_mean(pred, truth, k, include_background=False, ignore_empty=False)) > 1e-2
    # Plain mean over all valid (volume, class) pairs is not the paper's two-step mean either.
    assert abs(ours - np.nanmean(per_volume)) > 1e-3


def test_per_volume_dice_chunking(monkeypatch):
    rng = np.random.default_rng(1)
    truth, pred = _labels(rng, 5, 3), _labels(rng, 5, 3)
    whole = per_volume_dice(pred, truth, 3)
    monkeypatch.setattr("liftbench.segmentation.dice._CHUNK_VOXELS", 1)  # one volume at a time
    np.testing.assert_array_equal(per_volume_dice(torch.as_tensor(pred), torch.as_tensor(truth), 3), whole)


def test_mean_dice_all_empty_is_nan():
    assert math.isnan(mean_dice(np.full((3, 2), np.nan)))
    assert mean_dice(np.array([[0.5, np.nan], [np.nan, np.nan], [1.0, 0.0]])) == pytest.approx(0.5)


def test_lidc_thresholds():
    assert len(LIDC_THRESHOLDS) == 21
    assert LIDC_THRESHOLDS[:4] == (0.001, 0.01, 0.05, 0.1) and LIDC_THRESHOLDS[-1] == 0.95


def test_threshold_sweep_matches_monai(monkeypatch):
    gen = torch.Generator().manual_seed(3)
    prob = torch.rand(7, 4, 8, 8, generator=gen) ** 2
    truth = (prob + 0.3 * torch.rand(7, 4, 8, 8, generator=gen) > 0.6).long()
    truth[2] = 0
    truth[5] = 0  # two empty-truth volumes
    prob[0, 0, 0, :3] = torch.tensor([0.5, 0.05, 0.001])  # probabilities exactly on thresholds: not above them
    thresholds = (0.5,) + LIDC_THRESHOLDS  # unsorted, with a duplicate
    ours = threshold_sweep(prob, truth, thresholds)
    assert ours.shape == (7, len(thresholds))
    for j, thr in enumerate(thresholds):
        metric = DiceMetric(include_background=False, reduction="none")
        expected = metric((prob > thr).unsqueeze(1).long(), truth.unsqueeze(1)).squeeze(1).double().numpy()
        np.testing.assert_allclose(ours[:, j], expected, rtol=0, atol=1e-6, equal_nan=True)
    assert np.isnan(ours[[2, 5]]).all() and not np.isnan(ours[[0, 1, 3, 4, 6]]).any()
    # Mutation partner: >= instead of > moves the volume with probabilities sitting on the thresholds.
    metric = DiceMetric(include_background=False, reduction="none")
    at_or_above = metric((prob >= 0.5).unsqueeze(1).long(), truth.unsqueeze(1))[0, 0].item()
    assert at_or_above != pytest.approx(ours[0, 0], abs=1e-9)
    monkeypatch.setattr("liftbench.segmentation.dice._CHUNK_VOXELS", 1)
    np.testing.assert_array_equal(threshold_sweep(prob.numpy(), truth.numpy(), thresholds), ours)


def test_threshold_sweep_is_binary_per_volume_dice():
    gen = torch.Generator().manual_seed(4)
    prob = torch.rand(4, 3, 6, 6, generator=gen)
    truth = (torch.rand(4, 3, 6, 6, generator=gen) > 0.5).long()
    truth[1] = 0
    sweep = threshold_sweep(prob, truth, (0.3, 0.7))
    for j, thr in enumerate((0.3, 0.7)):
        np.testing.assert_allclose(
            sweep[:, j], per_volume_dice((prob > thr).long(), truth, 2)[:, 0], atol=1e-6, equal_nan=True
        )
