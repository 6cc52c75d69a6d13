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

NAMES = ("vit-tiny-shapes", "resnet-tiny-shapes")
STRATEGIES = {"vit-tiny-shapes": ("2d", "3d", "pcm", "pcg"), "resnet-tiny-shapes": ("2d", "3d", "acs", "pcg")}


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
    for name, family in (("vit-tiny-shapes", "vit"), ("resnet-tiny-shapes", "cnn")):
        entry = registry.get("backbone", name)
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
    other = NAMES[1 - NAMES.index(name)]
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
