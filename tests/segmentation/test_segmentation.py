"""Segmentation: dense features from every lifting, the two FeatDice procedures against known answers
(each with a mutation partner), and the segmentation protocols end to end on the synthetic set."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from seg_files import write_lidc, write_mmwhs

from liftbench.api import lift
from liftbench.errors import UsageError
from liftbench.segmentation import featdice as fd
from liftbench.segmentation.dense import block_indices, configure, dense_maps
from liftbench.segmentation.dice import mean_dice, per_volume_dice
from liftbench.segmentation.splits import selection_splits
from liftbench.testing import run_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VOLUME = (1, 3, 6, 32, 32)


@pytest.mark.parametrize("strategy", ["2d", "3d", "pcm", "pcg"])
def test_last_layer_is_the_final_normed_patch_map(dinov3, strategy):
    x = torch.randn(VOLUME, generator=torch.Generator().manual_seed(0))
    lifted = lift(dinov3, strategy)
    try:
        with torch.no_grad():
            plain = lifted(x).patches
            configure(lifted, "four_last")
            maps = dense_maps(lifted, x)
    finally:
        lifted.collect = ()
        lifted.unlift()
    depth = len(dinov3.blocks)
    assert len(maps) == min(4, depth)
    assert all(m.shape == (1, dinov3.embed_dim, 6, 2, 2) for m in maps)
    torch.testing.assert_close(maps[-1], plain, rtol=0, atol=2e-5)
    # mutation partner: an earlier block's map is far from the last one
    assert (maps[-2] - plain).abs().max() > 100 * 2e-5


def test_slice2d_intermediate_path_matches_timm_intermediates(dinov3):
    """Slice-2D with collect runs the HW PlaneCycle path; its block outputs equal timm's own per-slice
    ``forward_intermediates(norm=True)`` — an independent implementation."""
    x = torch.randn(VOLUME, generator=torch.Generator().manual_seed(1))
    lifted = lift(dinov3, "2d")
    try:
        configure(lifted, "four_even")
        with torch.no_grad():
            maps = dense_maps(lifted, x)
            slices = x[0].transpose(0, 1)  # (D, C, H, W)
            indices = list(lifted.collect)
            theirs = dinov3.forward_intermediates(slices, indices=indices, norm=True, output_fmt="NCHW", intermediates_only=True)
    finally:
        lifted.collect = ()
        lifted.unlift()
    for mine, ref in zip(maps, theirs, strict=True):
        torch.testing.assert_close(mine[0].transpose(0, 1), ref, rtol=0, atol=2e-5)
    assert (maps[0][0].transpose(0, 1) - theirs[-1]).abs().max() > 1e-3  # wrong block: far off


def test_block_indices_follow_the_authors():
    assert block_indices("last", 12) == (11,)
    assert block_indices("four_last", 24) == (20, 21, 22, 23)
    assert block_indices("four_even", 12) == (2, 5, 8, 11)
    assert block_indices("four_even", 24) == (4, 11, 17, 23)
    assert block_indices("four_even", 4) == (0, 1, 2, 3)
    with pytest.raises(UsageError, match="valid: last, four_last, four_even"):
        block_indices("all", 12)


def test_cnn_gives_its_last_map_only(nontrivial_timm):
    model = nontrivial_timm("resnet10t")
    lifted = lift(model, "acs")
    try:
        assert configure(lifted, "last") == 1
        with pytest.raises(UsageError, match="layers=last"):
            configure(lifted, "four_last")
        with torch.no_grad():
            (fmap,) = dense_maps(lifted, torch.randn(1, 3, 32, 32, 32))
        assert fmap.dim() == 5
    finally:
        lifted.unlift()


def _lesion_volume():
    """Features that are the mask itself (two channels: lesion, background) plus noise, a centred lesion."""
    mask = torch.zeros(8, 16, 16, dtype=torch.long)
    mask[2:6, 5:11, 5:11] = 1
    g = torch.Generator().manual_seed(0)
    features = torch.stack([mask.float(), 1 - mask.float()]) + 0.05 * torch.randn(2, 8, 16, 16, generator=g)
    return features, mask


def test_lesion_featdice_recovers_a_lesion_the_features_encode():
    features, mask = _lesion_volume()
    for reference in ("centre", "centroid"):
        sim = fd.lesion_map(features, mask, reference)
        assert sim.shape == mask.shape and 0 <= float(sim.min()) and float(sim.max()) <= 1
        assert fd.lesion_dice(sim, mask, [0.9])[0] > 0.95
    # mutation partner: a background reference token segments the background, not the lesion
    background = features.clone()
    background[:, 4, 8, 8] = features[:, 0, 0, 0]
    assert fd.lesion_dice(fd.lesion_map(background, mask, "centre"), mask, [0.9])[0] < 0.2


def test_lesion_map_upsamples_coarse_features_to_the_mask_grid():
    features, mask = _lesion_volume()
    coarse = torch.nn.functional.avg_pool3d(features[None], (1, 4, 4))[0]  # 4x4 tokens per slice
    sim = fd.lesion_map(coarse, mask, "centre")
    assert sim.shape == mask.shape
    assert fd.lesion_dice(sim, mask, [0.5])[0] > 0.6


def test_prototype_featdice_argmax_recovers_classes():
    g = torch.Generator().manual_seed(0)
    mask = torch.randint(0, 4, (4, 8, 8), generator=g)
    features = torch.nn.functional.one_hot(mask, 4).permute(3, 0, 1, 2).float() + 0.1 * torch.randn(4, 4, 8, 8, generator=g)
    pred = fd.prototype_prediction(features, mask, 4)
    assert mean_dice(per_volume_dice(pred[None], mask[None], 4)) > 0.99
    # mutation partner: features that ignore the classes give about chance
    noise = torch.randn(4, 4, 8, 8, generator=g)
    assert mean_dice(per_volume_dice(fd.prototype_prediction(noise, mask, 4)[None], mask[None], 4)) < 0.6


def test_prototype_absent_class_is_never_predicted():
    mask = torch.zeros(2, 4, 4, dtype=torch.long)
    mask[:, :2] = 1
    features = torch.nn.functional.one_hot(mask, 3).permute(3, 0, 1, 2).float()
    pred = fd.prototype_prediction(features, mask, 3)
    assert set(pred.unique().tolist()) <= {0, 1}


def test_carved_validation_split_is_recorded_and_disjoint():
    from liftbench.datasets.synthetic import load

    data = load(size=16, n_train=10, n_val=3, n_test=3)
    data.splits["val"] = data.splits["val"].__class__(volumes=data.splits["val"].volumes[:0], labels=[], masks=data.splits["val"].masks[:0])
    train, val, notes = selection_splits(data, "val", 0.2, seed=3)
    assert notes == {"selected_on": "val", "val_carved_from_train": 2, "split_seed": 3}
    assert len(train) == 8 and len(val) == 2
    rows = {v.tobytes() for v in data.splits["train"].volumes}
    assert {v.tobytes() for v in train.volumes}.isdisjoint({v.tobytes() for v in val.volumes})
    assert {v.tobytes() for v in train.volumes} | {v.tobytes() for v in val.volumes} == rows
    assert selection_splits(data, "test", 0.2, seed=3)[2] == {"selected_on": "test"}
    with pytest.raises(UsageError, match="valid: val, test"):
        selection_splits(data, "train", 0.2, 0)


SEG_QUICK = {"iterations": 3, "warmup": 1, "eval_every": 2, "hidden": 32, "batch_size": 2}


def test_segmentation_protocols_run_end_to_end(registry, tmp_path):
    rows = run_grid(registry, tmp_path, strategies="2d,pcg", protocols="featdice,seg-linear,seg-linear-cached,seg-finetune",
                    options=SEG_QUICK | {"select_threshold": False}, seeds=(0, 1))  # fmt: skip
    assert set(rows["status"]) == {"ok"}, rows.loc[rows["status"] != "ok", "error"].tolist()
    dice = rows[(rows["metric"] == "dice") & (rows["split"] == "test")]
    assert len(dice) == 2 * 3 * 2 and dice["value"].between(0, 1).all()
    assert set(rows.loc[rows["protocol"] != "featdice", "selected_on"]) == {"val"}
    featdice = rows[rows["metric"] == "featdice"]
    assert len(featdice) == 4 and featdice["value"].between(0, 1).all()
    notes = rows.loc[rows["protocol"] == "featdice", "notes"].iloc[0]
    assert '"procedure": "lesion"' in notes and '"reference": "centroid"' in notes
    stored = list((tmp_path / "results" / "probabilities").glob("*.parquet"))
    assert len(stored) == len(rows["run_key"].unique())
    frame = pd.read_parquet(stored[0])
    assert "index" in frame.columns and len(frame) == 6
    assert len(list((tmp_path / "cache" / "seg-features").glob("*.pt"))) == 2  # one per lifting, seeds reuse it


def test_selection_on_test_is_recorded(registry, tmp_path):
    rows = run_grid(registry, tmp_path, protocols="seg-linear", options=SEG_QUICK | {"selection": "test"})
    assert set(rows["selected_on"]) == {"test"} and set(rows["split"]) == {"test"}


def test_classification_protocols_skip_segmentation_only_datasets(registry, tmp_path):
    from liftbench.study.grid_runs import plan

    write_lidc(tmp_path, n_train=2, n_test=1)
    write_mmwhs(tmp_path, "CT")
    runs = plan(registry, datasets=registry.resolve("dataset", "lidc,mmwhs-ct"), backbones=registry.resolve("backbone", "tiny-vit"),
                strategies=registry.resolve("strategy", "2d"), protocols=registry.resolve("protocol", "linear,seg-linear"),
                seeds=[0], size=None, weights="random", data_root=str(tmp_path))  # fmt: skip
    sizes = {r.spec.dataset: r.spec.size for r in runs}
    assert sizes == {"lidc": 160, "mmwhs-ct": 64}
    reasons = {(r.spec.dataset, r.spec.protocol): r.skip_reason for r in runs}
    assert "segmentation-only" in reasons[("lidc", "linear")] and reasons[("lidc", "seg-linear")] == ""


def test_cached_variant_refuses_augmentation(tmp_path):
    from liftbench.cli import main

    code = main(["run", "--datasets", "synthetic", "--size", "32", "--backbones", "vit-tiny-shapes", "--strategies", "2d",
                 "--protocol", "seg-linear-cached", "--opt", "augment=fixed", "--results", str(tmp_path / "r"), "--no-leaderboard"])  # fmt: skip
    assert code == 2


def test_unknown_layers_choice_is_a_usage_error(tmp_path):
    from liftbench.cli import main

    code = main(["run", "--datasets", "synthetic", "--protocol", "seg-linear", "--opt", "layers=all", "--results", str(tmp_path / "r")])
    assert code == 2


@pytest.mark.filterwarnings("ignore:The maximum displacement")
def test_table3_command_runs_on_tiny_files_in_the_exact_layouts(tmp_path):
    """The command that fills Table 3 (`--datasets lidc,mmwhs-ct,mmwhs-mri --protocol featdice,seg-linear,seg-finetune
    --strategies 2d,3d,pcm,pcg`), on tiny releases in both on-disk layouts, with the built-in tiny ViT."""
    from liftbench.cli import main
    from liftbench.run.results import read_results

    data = tmp_path / "data"
    write_lidc(data, n_train=5, n_test=3)
    write_mmwhs(data, "CT")
    write_mmwhs(data, "MRI")
    out = tmp_path / "results"
    code = main(["run", "--datasets", "lidc,mmwhs-ct,mmwhs-mri", "--protocol", "featdice,seg-linear,seg-finetune",
                 "--strategies", "2d,3d,pcm,pcg", "--backbones", "vit-tiny-shapes", "--data-root", str(data), "--size", "32",
                 "--dataset-opt", "featdice_size=48", "--quick", "--opt", "hidden=32", "--results", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--no-leaderboard"])  # fmt: skip
    assert code == 0
    rows = read_results(out).frame
    assert set(rows["status"]) == {"ok"}
    test = rows[rows["split"] == "test"]
    assert len(test) == 3 * 3 * 4 and test["value"].between(0, 1).all()
    assert set(test["metric"]) == {"featdice", "dice"}
    notes = rows.loc[(rows["dataset"] == "lidc") & (rows["protocol"] == "featdice"), "notes"].iloc[0]
    assert '"reference": "centre"' in notes and '"inplane": 48' in notes
    mmwhs = rows.loc[(rows["dataset"] == "mmwhs-ct") & (rows["protocol"] == "featdice"), "notes"].iloc[0]
    assert '"procedure": "prototype"' in mmwhs


def test_same_run_gives_the_same_dice_whether_or_not_the_backbone_was_already_built(registry, tmp_path):
    """The decoder's init is seeded after the backbone is fetched: a reused (memoised) backbone and a freshly
    built one give the same run the same result. The shipped ViT is built by timm (its init draws from the
    global generator) before its weights load, so building it moves the generator the decoder is drawn from."""
    from liftbench.run.inputs import _memo

    _memo.clear()
    grid = {"backbones": "vit-tiny-shapes", "weights": "pretrained", "protocols": "seg-linear", "options": SEG_QUICK}
    first = run_grid(registry, tmp_path / "a", **grid)
    again = run_grid(registry, tmp_path / "b", **grid)  # backbone memoised now
    pick = lambda rows: rows.loc[(rows["metric"] == "dice") & (rows["split"] == "test"), "value"].tolist()  # noqa: E731
    assert pick(first) == pick(again)


def test_threshold_sweep_counts_nan_as_background():
    from liftbench.segmentation.dice import threshold_sweep

    truth = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    truth[0, 0, :2, :2] = 1
    prob = truth.double().clone()
    prob[0, 1, 3, 3] = float("nan")
    assert threshold_sweep(prob, truth, [0.5]).tolist() == [[1.0]]


def test_a_refused_layers_choice_leaves_the_cnn_unpatched(registry, tmp_path):
    with pytest.raises(UsageError, match="layers=last"):  # a user mistake stops the grid ...
        run_grid(registry, tmp_path, backbones="tiny-cnn", strategies="acs", protocols="seg-linear", options=SEG_QUICK | {"layers": "four_last"})
    rows = run_grid(registry, tmp_path / "again", backbones="tiny-cnn", strategies="acs", protocols="seg-linear", options=SEG_QUICK)
    assert set(rows["status"]) == {"ok"}


def test_seg_feature_cache_follows_the_data(registry, tmp_path, monkeypatch):
    """Other volumes under the same file names and the same options (a LIDC release rewritten in place): a new
    cache entry, not the stale one."""
    from liftbench.run.inputs import _memo

    data = tmp_path / "data"
    monkeypatch.setenv("LIFTBENCH_DATA_ROOT", str(data))
    for seed in (0, 1):
        write_lidc(data, n_train=4, n_test=2, seed=seed)
        _memo.clear()  # a new process would read the files again
        run_grid(registry, tmp_path, datasets="lidc", protocols="seg-linear-cached", options=SEG_QUICK)
        (tmp_path / "results").rename(tmp_path / f"results{seed}")  # the same run key: let it run again
    assert len(list((tmp_path / "cache" / "seg-features").glob("*.pt"))) == 2


def test_decoder_up_blocks_follow_the_stride():
    from liftbench.segmentation.decoder import ProgressiveUpHead, up_blocks_for

    assert up_blocks_for(10, 160) == 4 and up_blocks_for(4, 64) == 4  # patch-16 ViTs: the authors' head
    assert up_blocks_for(4, 32) == 3 and up_blocks_for(2, 64) == 5 and up_blocks_for(32, 32) == 1
    head = ProgressiveUpHead(64, 2, hidden=64, up_blocks=3)
    assert head(torch.randn(1, 64, 5, 4, 4)).shape == (1, 2, 5, 32, 32)
    with pytest.raises(ValueError, match="divisible by 32"):
        ProgressiveUpHead(64, 2, hidden=48, up_blocks=5)


def test_per_volume_results_name_their_volumes(tmp_path):
    """LIDC per-volume Dice rows carry the patch file names, MMWHS rows the case names."""
    from liftbench.cli import main

    data = tmp_path / "data"
    write_lidc(data, n_train=4, n_test=3)
    out = tmp_path / "results"
    code = main(["run", "--datasets", "lidc", "--protocol", "featdice", "--strategies", "2d", "--backbones", "vit-tiny-shapes",
                 "--data-root", str(data), "--size", "32", "--dataset-opt", "featdice_size=32", "--results", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--no-leaderboard"])  # fmt: skip
    assert code == 0
    (stored,) = (out / "probabilities").glob("*.parquet")
    frame = pd.read_parquet(stored)
    assert list(frame.columns[:2]) == ["index", "volume"] and frame["volume"].str.endswith(".npz").all()
