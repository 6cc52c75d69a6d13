"""The shipped shapes backbones: verified loading, clear errors, seeded random inits, every strategy of
their family, trained weights where every block counts, and a training loop that still runs."""

from __future__ import annotations

import shutil

import pytest
import torch

import liftbench
from liftbench.backbones.shapes import images, load, models, train
from liftbench.backbones.timm_backbones import file_sha256, normalisation, state_dict_sha256
from liftbench.errors import MissingFileError, UsageError

NAMES = ("vit-tiny-shapes", "resnet-tiny-shapes", "convnext-tiny-shapes")
STRATEGIES = {"vit-tiny-shapes": ("2d", "3d", "pcm", "pcg"), "resnet-tiny-shapes": ("2d", "3d", "acs", "pcg"),
              "convnext-tiny-shapes": ("2d", "3d", "acs", "pcg")}  # fmt: skip


@pytest.fixture(scope="module")
def pretrained():
    return {name: load.create("pretrained", model_name=name) for name in NAMES}


@pytest.fixture(scope="module")
def volumes():
    from liftbench.datasets.synthetic import load as synthetic

    split = synthetic(size=32, n_train=3, n_val=3, n_test=3).splits["test"]
    return split.volumes[:2]


@pytest.mark.parametrize("name", NAMES)
def test_shipped_file_verifies_and_loads(name, pretrained):
    path = load.weights_path(name)
    assert path.is_file() and path.stat().st_size < 2 * 1024 * 1024
    assert file_sha256(path) == load.EXPECTED_SHA256[name]
    model, info = pretrained[name]
    assert info.source == "pretrained" and not info.is_random
    assert info.sha256 == state_dict_sha256(model) and not model.training
    assert normalisation(model) == (models.MEAN, models.STD)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_registered_as_builtin_backbones():
    from liftbench.plugin.manager import build_registry

    registry = build_registry()
    for name, family, alias in (("vit-tiny-shapes", "vit", "vitt-shapes"), ("resnet-tiny-shapes", "cnn", "r-shapes"),
                                ("convnext-tiny-shapes", "cnn", "cnx-shapes")):  # fmt: skip
        entry = registry.get("backbone", name)
        assert registry.get("backbone", alias).name == name and entry.options == {"model_name": name}
        assert entry.families == (family,) and entry.plugin == "builtin-shapes-backbones"
        model, info = entry.load()("random:1", **entry.options)
        assert info.source == "random:1"


@pytest.mark.parametrize("name", NAMES)
def test_missing_or_corrupted_file_is_a_clear_error(name, tmp_path, monkeypatch):
    shipped = load.weights_path(name)
    monkeypatch.setattr(load, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(
        MissingFileError, match=rf"weights of {name} are missing.*{name}\.safetensors.*python -m liftbench.backbones.shapes.train"
    ):
        load.create("pretrained", model_name=name)
    corrupted = tmp_path / f"{name}.safetensors"
    shutil.copyfile(shipped, corrupted)
    with open(corrupted, "r+b") as handle:
        handle.seek(-8, 2)
        handle.write(b"\x00\x01\x02\x03\x04\x05\x06\x07")
    with pytest.raises(
        MissingFileError,
        match=rf"{name}.*not the one this liftbench expects.*python -m liftbench.backbones.shapes.train --model {name}",
    ):
        load.create("pretrained", model_name=name)


@pytest.mark.parametrize("name", NAMES)
def test_random_seeds_are_reproducible_and_distinct(name, pretrained):
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a, info_a = load.create("random:3", model_name=name)
    assert torch.equal(torch.rand(1), before)  # the caller's RNG is untouched
    b, info_b = load.create("random:3", model_name=name)
    c, info_c = load.create("random:4", model_name=name)
    zero, info_zero = load.create("random", model_name=name)
    assert info_a.source == "random:3" and info_a.is_random and info_zero.source == "random:0"
    assert info_a.sha256 == info_b.sha256 != info_c.sha256
    assert len({info_a.sha256, info_c.sha256, info_zero.sha256, pretrained[name][1].sha256}) == 4
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])


@pytest.mark.parametrize("name", NAMES)
def test_local_file_and_mismatched_file(name, tmp_path, pretrained):
    model, info = load.create(str(load.weights_path(name)), model_name=name)
    assert info.source == str(load.weights_path(name)) and info.sha256 == pretrained[name][1].sha256
    other = NAMES[(NAMES.index(name) + 1) % len(NAMES)]
    with pytest.raises(UsageError, match=rf"{other}\.safetensors.*does not fit the {name} architecture.*missing key"):
        load.create(str(load.weights_path(other)), model_name=name)
    with pytest.raises(MissingFileError, match="does not exist"):
        load.create(str(tmp_path / "nothing.safetensors"), model_name=name)
    with pytest.raises(UsageError, match="takes no options"):
        load.create("random", model_name=name, depth=3)


@pytest.mark.parametrize("name", NAMES)
def test_lifts_with_every_strategy_of_its_family(name, pretrained, volumes):
    from liftbench.datasets.volumes import prepare_batch

    model, _ = pretrained[name]
    batch = prepare_batch(volumes, *normalisation(model))
    pooled = {}
    with torch.no_grad():
        for strategy in STRATEGIES[name]:
            lifted = liftbench.lift(model, strategy)
            features = lifted(batch)
            lifted.unlift()
            assert torch.isfinite(features.pooled).all() and features.pooled.shape[0] == 2
            pooled[strategy] = features.pooled
    # The liftings give clearly different features: measured 0.8-1.1 relative L2 from slice-2D for the
    # shipped ViT, against 0.04-0.07 for its random init, whose blocks are close to identities.
    base = pooled["2d"]
    for strategy in STRATEGIES[name][1:]:  # every lifting, so one that quietly fell back to slice-2D fails
        other = pooled[strategy]
        if other.dim() == 3 and other.shape == base.shape:
            diff = (other - base).norm() / base.norm()
        else:  # compare volume-level summaries
            diff = (other.reshape(2, -1, other.shape[-1]).mean(1) - base.mean(1)).norm() / base.mean(1).norm()
        assert diff > 0.3, (strategy, float(diff))


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_features_differ_from_random_init(name, pretrained):
    """The shipped weights are trained ones, not the seed-0 init they started from: the pooled features of the
    same images differ from the init's by more than the init's own size (relative L2 measured 1.5 ViT, 11 ResNet,
    1.7 ConvNeXt), and they separate the shape classes: a nearest-class-mean rule fitted on 200 images classifies
    the other 200 at 0.80-0.89 (the random inits' features: 0.09-0.14; chance 0.1)."""
    model, _ = pretrained[name]
    random, _ = load.create("random", model_name=name)
    batch = images.make_images(400, seed=7)
    x = train.model_input(batch, models.MEAN, models.STD)
    with torch.no_grad():
        trained, untrained = model(x), random(x)
    assert trained.shape == untrained.shape == (400, model.num_features)
    assert (trained - untrained).norm() / untrained.norm() > 0.5
    labels = torch.from_numpy(batch.shape)
    fit, held = slice(0, 200), slice(200, 400)
    means = torch.stack([trained[fit][labels[fit] == c].mean(0) for c in range(images.NUM_CLASSES)])
    predicted = torch.cdist(trained[held], means).argmin(1)
    assert (predicted == labels[held]).float().mean() > 0.5


def test_every_convnext_block_matters(pretrained):
    """The ConvNeXt's analogue of the ViT test below: LayerScale grew from its 0.1 init (measured mean |gamma|
    0.12-0.27 per block) and dropping any one of the five blocks changes the pooled feature by 24-118% (random
    init, whose blocks are near-identities: at most 2%)."""
    model, _ = pretrained["convnext-tiny-shapes"]
    gammas = train.layer_scale_summary(model)
    assert len(gammas) == sum(len(stage.blocks) for stage in model.stages) == 5
    assert min(gammas.values()) > 0.05, gammas
    x = train.model_input(images.make_images(16, seed=99), models.MEAN, models.STD)
    with torch.no_grad():
        full = model(x)
        for stage in model.stages:
            for index in range(len(stage.blocks)):
                blocks = stage.blocks
                stage.blocks = torch.nn.Sequential(*[b for i, b in enumerate(blocks) if i != index])
                try:
                    ablated = model(x)
                finally:
                    stage.blocks = blocks
                assert (ablated - full).norm() / full.norm() > 0.15, index


def test_every_vit_block_matters(pretrained):
    """LayerScale stays near its 0.1 init (measured 0.09-0.13; DINOv3's 1e-5 would make every block a
    near-identity), and dropping any one block changes the CLS feature by 65-100% (random init: 7-13%)."""
    model, _ = pretrained["vit-tiny-shapes"]
    gammas = train.layer_scale_summary(model)
    assert len(gammas) == 2 * len(model.blocks)
    assert min(gammas.values()) > 0.05, gammas
    x = train.model_input(images.make_images(16, seed=99), models.MEAN, models.STD)
    with torch.no_grad():
        full = model(x)
        for index in range(len(model.blocks)):
            blocks = model.blocks
            model.blocks = torch.nn.Sequential(*[b for i, b in enumerate(blocks) if i != index])
            try:
                ablated = model(x)
            finally:
                model.blocks = blocks
            assert (ablated - full).norm() / full.norm() > 0.3, index


def test_generator_is_deterministic_and_labelled():
    a, b, c = images.make_images(64, seed=1), images.make_images(64, seed=1), images.make_images(64, seed=2)
    assert a.images.shape == (64, 32, 32) and a.images.dtype.name == "float32"
    assert (a.images == b.images).all() and (a.shape == b.shape).all() and not (a.images == c.images).all()
    assert 0.0 <= a.images.min() and a.images.max() <= 1.0
    none = a.shape == images.NUM_CLASSES - 1
    assert (a.cell[none] == -1).all() and (a.cell[~none] >= 0).all() and not a.target_mask[none].any()


@pytest.mark.parametrize("name", NAMES)
def test_training_loop_smoke(name, tmp_path):
    recipe = train.Recipe(steps=3, batch_size=8, lr=1e-3, weight_decay=0.0, warmup=1)
    backbone, record = train.train_model(name, recipe, eval_count=16, log=None)
    assert not backbone.training and record["held_out"]["images"] == 16
    assert 0.0 <= record["held_out"]["shape_acc"] <= 1.0 and record["params"] == sum(
        p.numel() for p in backbone.parameters()
    )
    path = tmp_path / f"{name}.safetensors"
    sha = train.save_weights(backbone, path)
    model, info = load.create(str(path), model_name=name)
    assert info.sha256 == state_dict_sha256(backbone) and len(sha) == 64


def test_training_one_model_keeps_the_others_files_and_records(tmp_path, capsys):
    """``--model NAME`` writes that model's file and record only: the other models' weight files are not
    touched and their training.json records stay as they were (so their README rows too)."""
    import json

    shipped = load.WEIGHTS_DIR
    shutil.copyfile(shipped / "training.json", tmp_path / "training.json")
    for name in ("vit-tiny-shapes", "resnet-tiny-shapes"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"not touched")
    before = json.loads((tmp_path / "training.json").read_text())
    assert (
        train.main(["--model", "convnext-tiny-shapes", "--steps", "2", "--threads", "1", "--out", str(tmp_path)]) == 0
    )
    capsys.readouterr()
    after = json.loads((tmp_path / "training.json").read_text())
    assert {k: v for k, v in after.items() if k != "convnext-tiny-shapes"} == {
        k: v for k, v in before.items() if k != "convnext-tiny-shapes"
    }
    assert after["convnext-tiny-shapes"]["recipe"]["steps"] == 2
    for name in ("vit-tiny-shapes", "resnet-tiny-shapes"):
        assert (tmp_path / f"{name}.safetensors").read_bytes() == b"not touched"
        assert f"| {name} | " in (tmp_path / "README.md").read_text()
    assert file_sha256(tmp_path / "convnext-tiny-shapes.safetensors") == after["convnext-tiny-shapes"]["file_sha256"]


def test_update_expected_sha_replaces_an_entry_or_adds_a_new_one(tmp_path):
    copy = tmp_path / "load.py"
    shutil.copyfile(load.__file__, copy)
    assert train.update_expected_sha("resnet-tiny-shapes", "a" * 64, copy)
    assert train.update_expected_sha("new-tiny-shapes", "b" * 64, copy)
    namespace: dict = {}
    text = copy.read_text()
    exec(text[text.index("EXPECTED_SHA256 = {") : text.index("}", text.index("EXPECTED_SHA256 = {")) + 1], namespace)
    assert namespace["EXPECTED_SHA256"] == {
        **load.EXPECTED_SHA256,
        "resnet-tiny-shapes": "a" * 64,
        "new-tiny-shapes": "b" * 64,
    }


SHAPES_STUDY = "cnn-vs-vit-shapes"


def test_cnn_vs_vit_shapes_study_is_listed_and_plans_every_strategy_each_family_takes(registry, tmp_path, capsys):
    """The reduced, offline CNN-vs-ViT comparison: the three shipped backbones, every strategy each family lifts
    with (ViT: 2d, 3d, pcm, pcg; CNNs: 2d, 3d, acs, pcg), synthetic and diagnostic at 32^3, 3 seeds: 72 runs."""
    from liftbench.cli import main
    from liftbench.study.plan import plan_study, resolve

    assert main(["list", "studies"]) == 0
    assert SHAPES_STUDY in capsys.readouterr().out
    study = resolve(registry.get("study", SHAPES_STUDY).load(), registry)
    assert study.results == f"results/{SHAPES_STUDY}" and study.leaderboard.baseline == "2d"
    (grid,) = study.grids
    assert grid.backbones == NAMES and grid.datasets == ("synthetic", "diagnostic") and grid.protocols == ("linear",)
    assert grid.seeds == (0, 1, 2) and grid.size == 32
    runs = [r.spec for r in plan_study(study, registry) if not r.skip_reason]
    assert {(r.backbone, r.strategy) for r in runs} == {(b, s) for b in NAMES for s in STRATEGIES[b]}
    assert len(runs) == len(NAMES) * 4 * 2 * 3 == 72
    argv = ["run", "--study", SHAPES_STUDY, "--dry-run", "--results", str(tmp_path / "r")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "plan: 90 runs; 0 already in" in out and "18 skipped pairs, 72 to run" in out  # ViT x acs, CNN x pcm
    assert not (tmp_path / "r").exists()  # a dry run writes nothing
