"""The paper's augmented probe (``linear-aug``) and fine-tuning (``finetune``): augmentation properties,
end-to-end CLI runs on tiny synthetic data, and in-process runs on a tiny DINOv3-style ViT."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from cli_args import TINY_SYNTHETIC
from protocol_runs import metrics_of, recording_context

from liftbench.cli import main
from liftbench.plugin.manager import build_registry
from liftbench.protocols import finetune, linear_aug
from liftbench.protocols.augment import augment_batch
from liftbench.run.results import read_results

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------------------ augmentation


def _volumes(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _augment(x: torch.Tensor, seed: int, **kwargs) -> torch.Tensor:
    return augment_batch(x, torch.Generator().manual_seed(seed), **kwargs)


@pytest.mark.parametrize("shape", [(3, 1, 8, 16, 16), (2, 3, 6, 16, 12)])
def test_augmentation_keeps_shapes_and_is_deterministic_in_its_seed(shape):
    x = _volumes(*shape)
    out = _augment(x, 7)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, _augment(x, 7))
    assert any(not torch.equal(out, _augment(x, seed)) for seed in range(8, 12))
    assert torch.equal(x, _volumes(*shape))  # the input is left alone


def test_flips_and_rotations_stay_in_the_axial_plane():
    x = _volumes(6, 1, 8, 16, 16)
    profile = x.mean(dim=(-2, -1))  # (B, C, D): the mean of every slice
    for seed in range(10):
        flipped = _augment(x, seed, padding=0, rotate=False)
        rotated = _augment(x, seed, padding=0, flip=False)
        both = _augment(x, seed, padding=0)
        for out in (flipped, rotated, both):
            assert torch.allclose(out.mean(dim=(-2, -1)), profile, atol=1e-6)
        for i in range(len(x)):  # every sample is one of the in-plane flips / rotations, never a depth one
            flips = [torch.flip(x[i], dims) for dims in ([], [-2], [-1], [-2, -1])]
            rots = [torch.rot90(x[i], k, dims=(-2, -1)) for k in range(4)]
            assert any(torch.equal(flipped[i], f) for f in flips)
            assert any(torch.equal(rotated[i], r) for r in rots)
    # rotations are skipped when H != W (the shape would change)
    rect = _volumes(2, 1, 4, 16, 12)
    assert torch.equal(_augment(rect, 3, padding=0, flip=False), rect)


def test_crop_pads_the_axial_plane_only_and_changes_the_depth_profile():
    x = _volumes(4, 1, 8, 16, 16) + 0.5  # no zeros inside, so padding shows as zeros
    profile = x.mean(dim=(-2, -1))
    changed = False
    for seed in range(6):
        out = _augment(x, seed, flip=False, rotate=False)
        zero = out == 0
        # the same window for every slice: the zero pattern does not vary along depth
        assert torch.equal(zero, zero[:, :, :1].expand_as(zero))
        changed |= not torch.allclose(out.mean(dim=(-2, -1)), profile, atol=1e-6)
    assert changed


# ------------------------------------------------------------------------------ end to end (CLI)


@pytest.mark.parametrize("protocol", ["finetune", "linear-aug"])
def test_protocol_runs_end_to_end_through_the_cli(tmp_path, capsys, protocol):
    out = tmp_path / "study"
    args = ["run", "--datasets", "synthetic", "--backbones", "vit-tiny-shapes", "--strategies", "pcg", "--protocol", protocol,
            "--weights", "random", "--quick", "--iterations", "4", "--warmup", "1", "--batch-size", "2", "--results", str(out),
            "--no-leaderboard", *TINY_SYNTHETIC]
    assert main(args) == 0, capsys.readouterr().err
    frame = read_results(out).frame
    assert (frame["status"] == "ok").all() and set(frame["protocol"]) == {protocol}
    test = frame[frame["split"] == "test"].set_index("metric")["value"]
    assert set(test.index) == {"auc", "acc"} and test.between(0, 1).all()
    assert (frame["selected_on"] == "val").all()
    probabilities = pd.read_parquet(next((out / "probabilities").glob("*.parquet")))
    assert len(probabilities) == 6 and probabilities.filter(like="p").sum(axis=1).round(5).eq(1).all()
    assert "feature cache" not in capsys.readouterr().out  # neither protocol uses the feature cache


def test_aliases_resolve():
    registry = build_registry()
    assert registry.get("protocol", "paper-probe").name == "linear-aug"
    assert registry.get("protocol", "ft").name == "finetune"


# ------------------------------------------------------------------------- in process, tiny models


def test_finetune_trains_a_fresh_backbone_and_leaves_the_shared_one_alone(registry, tmp_path):
    ctx = recording_context(registry, tmp_path, "finetune")
    shared, _ = ctx.backbone()
    before = copy.deepcopy(shared.state_dict())
    result = finetune.run(ctx)
    assert set(metrics_of(result)) == {("val", "auc"), ("val", "acc"), ("test", "auc"), ("test", "acc")}
    assert len(result.probabilities) == 6 and result.selected_on == "val"
    (model, initial), = ctx.fresh
    assert model is not shared
    changed = [name for name, value in model.state_dict().items() if not torch.equal(value, initial[name])]
    assert any(name.startswith("blocks.") for name in changed) and "patch_embed.proj.weight" in changed
    assert ctx.backbone()[0] is shared
    assert all(torch.equal(value, before[name]) for name, value in shared.state_dict().items())
    assert not shared.training


def test_finetune_bf16_checkpointing_and_accumulation_run_on_cpu(registry, tmp_path, monkeypatch):
    from liftbench.lifting import vit_tokens

    calls = []
    real = vit_tokens.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(vit_tokens, "checkpoint", counting)
    ctx = recording_context(registry, tmp_path, "finetune", dtype="bf16", checkpoint=True, accumulate=2)
    result = finetune.run(ctx)
    assert calls  # the blocks ran under activation checkpointing
    assert result.notes["dtype"] == "bf16" and result.notes["checkpoint"] and result.notes["accumulate"] == 2
    assert all(0 <= value <= 1 for value in metrics_of(result).values())


def test_finetune_checkpoint_on_a_cnn_is_ignored_with_a_note(registry, tmp_path):
    ctx = recording_context(registry, tmp_path, "finetune", backbone="tiny-cnn", strategy="2d", checkpoint=True, iterations=1, warmup=0)
    result = finetune.run(ctx)
    assert any("no activation checkpointing" in line for line in ctx.logged)
    assert ("test", "auc") in metrics_of(result)


def test_linear_aug_keeps_the_backbone_frozen_and_is_reproducible(registry, tmp_path):
    ctx = recording_context(registry, tmp_path, "linear-aug")
    shared, _ = ctx.backbone()
    before = copy.deepcopy(shared.state_dict())
    first = linear_aug.run(ctx)
    assert not ctx.fresh and not shared.training
    assert all(torch.equal(value, before[name]) for name, value in shared.state_dict().items())
    assert first.notes["backbone_mode"] == "eval"
    second = linear_aug.run(ctx)
    assert first.metrics == second.metrics
    assert first.probabilities.equals(second.probabilities)
