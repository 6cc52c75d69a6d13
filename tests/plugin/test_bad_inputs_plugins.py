"""Bad things plugins and files hand over are caught where they enter, naming what is wrong and whose it is.

Each case: the input, what is raised (or the command's exit status), that the message names the bad thing,
that no traceback is printed, and, for command-line runs, what the results folder holds afterwards. Every
rejection has a partner: the same input without the flaw passes, so a check that refused everything would
fail here too.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from bad_plugins import FlawedDatasets
from medmnist_files import write_medmnist_npz

from liftbench.checks import check_finite, check_weights, load_dataset
from liftbench.cli import main
from liftbench.datasets import medmnist3d, synthetic
from liftbench.errors import MissingFileError, PluginError, UsageError
from liftbench.run.results import read_results, result_files
from liftbench.testing import registry_with

SIZE = 16
QUICK = ["--weights", "random", "--quick", "--iterations", "4", "--warmup", "1", "--no-leaderboard", "--size", str(SIZE)]
PLUGIN = ("flawed-plugin", FlawedDatasets())


@pytest.fixture(scope="module")
def flawed_registry():
    return registry_with(PLUGIN)


@pytest.fixture
def cli(flawed_registry, monkeypatch):
    """``liftbench ...`` on a registry holding the flawed datasets; returns (exit status, stderr)."""
    monkeypatch.setattr("liftbench.plugin.manager.build_registry", lambda *a, **k: flawed_registry)

    def run(*args: str) -> int:
        return main(list(args))

    return run


def flawed(flawed_registry, flaw: str, size: int = SIZE, **options):
    return load_dataset(flawed_registry.get("dataset", "flawed"), size=size, options={"flaw": flaw, **options})


# --- datasets: what a plugin's load returns ----------------------------------------------------------------------

CONTRACT = {
    "4d-volumes": "(N, 1, D, H, W), got shape (6, 16, 16, 16)",
    "wrong-size": "train volumes have shape (6, 1, 8, 8, 8); at --size 16 a multi-class dataset hands over (N, 1, 16, 16, 16)",
    "wrong-dataset-size": "its size is 17, but --size 16 was asked for",
    "float-above-one": "float volumes hold values in [",
    "nan-volumes": "1 volume value(s) are not finite",
    "int16-volumes": "volumes are int16",
    "empty-train": "the train split is empty",
    "empty-val": "the val split is empty (only a segmentation set may leave val empty)",
    "labels-out-of-range": "train labels [3] lie outside 0..2",
    "fractional-labels": "labels must be integers, got float64",
    "labels-count": "train has 6 volumes but 5 labels",
    "masks-shape": "train masks have shape (6, 16, 15, 16)",
    "masks-values": "train masks hold values in 0..2; the mask classes background, lesion allow 0..1",
    "no-masks": "registered with has_masks=True but not every split holds masks",
    "not-a-dataset": "returned a dict, not a liftbench.datasets.volumes.VolumeDataset",
    "ignores-n-train": "n_train=4 was asked for, but the train split holds 6 volumes (the option is declared but not honoured)",
}


@pytest.mark.parametrize("flaw", sorted(CONTRACT))
def test_a_dataset_breaking_the_contract_is_a_plugin_error_naming_the_plugin(flawed_registry, flaw):
    options = {"n_train": 4} if flaw == "ignores-n-train" else {}
    with pytest.raises(PluginError) as raised:
        flawed(flawed_registry, flaw, **options)
    message = str(raised.value)
    assert "dataset 'flawed' from plugin 'flawed-plugin'" in message and CONTRACT[flaw] in message, message
    assert "\n" not in message


def test_the_same_dataset_without_a_flaw_passes(flawed_registry):
    dataset = flawed(flawed_registry, "none", n_train=4)
    assert [len(dataset.splits[s]) for s in ("train", "val", "test")] == [4, 6, 6]
    assert dataset.splits["train"].volumes.shape[1:] == (1, SIZE, SIZE, SIZE)


def test_a_segmentation_set_may_keep_its_native_size_when_it_resizes_to_the_run_size(flawed_registry):
    entry = flawed_registry.get("dataset", "flawed-seg")
    dataset = load_dataset(entry, size=SIZE, options={"stored": 24})  # like LIDC: stored 24³, network 16² in-plane
    assert dataset.splits["train"].volumes.shape[2:] == (24, 24, 24) and len(dataset.splits["val"]) == 0
    with pytest.raises(PluginError, match=r"train volumes have shape \(6, 1, 24, 24, 24\); at --size 16 a segmentation"):
        load_dataset(entry, size=SIZE, options={"stored": 24, "network": False})  # the network would see 24²
    assert load_dataset(entry, size=SIZE, options={"stored": SIZE, "network": False}).size == SIZE  # like MMWHS


def test_malformed_volumes_are_a_clear_error_in_a_dry_run_and_a_run(cli, tmp_path, capsys):
    out = tmp_path / "r"
    args = ["run", "--datasets", "flawed", "--dataset-opt", "flaw=4d-volumes", "--backbones", "vit-tiny-shapes",
            "--strategies", "2d", "--results", str(out), *QUICK]  # fmt: skip
    assert cli(*args, "--dry-run") == 2
    err = capsys.readouterr().err
    assert "plugin 'flawed-plugin'" in err and "(N, 1, D, H, W)" in err and "Traceback" not in err
    assert cli(*args) == 2
    err = capsys.readouterr().err
    assert "plugin 'flawed-plugin'" in err and "(N, 1, D, H, W)" in err and "Traceback" not in err
    assert result_files(out) == []  # nothing recorded for a plugin's broken data


def test_volumes_of_another_size_are_never_recorded_as_the_run_size(cli, tmp_path, capsys):
    out = tmp_path / "r"
    rc = cli("run", "--datasets", "flawed", "--dataset-opt", "flaw=wrong-size", "--backbones", "vit-tiny-shapes",
             "--strategies", "2d", "--results", str(out), *QUICK)  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "(6, 1, 8, 8, 8)" in err and "(N, 1, 16, 16, 16)" in err and "Traceback" not in err
    assert result_files(out) == []


def test_synthetic_honours_every_split_size_and_refuses_zero():
    dataset = synthetic.load(16, n_train=4, n_val=3, n_test=5)
    assert [len(dataset.splits[s]) for s in ("train", "val", "test")] == [4, 3, 5]
    with pytest.raises(UsageError, match=r"n_train=0"):
        synthetic.load(16, n_train=0)  # was: 0 meant "the default", 120 volumes recorded as 0


def test_n_train_zero_exits_2_before_anything_runs(cli, tmp_path, capsys):
    out = tmp_path / "r"
    rc = cli("run", "--datasets", "synthetic", "--dataset-opt", "n_train=0", "--backbones", "vit-tiny-shapes",
             "--strategies", "2d", "--results", str(out), *QUICK[:-2], "--size", "28")  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "n_train" in err and ">= 1" in err and "Traceback" not in err
    assert result_files(out) == []


# --- metrics: an undefined test metric is a failed run saying why --------------------------------------------------


def test_a_one_class_test_split_is_a_failed_run_saying_why(cli, tmp_path, capsys):
    def grid(out, flaw):
        return ["run", "--datasets", "flawed", "--dataset-opt", f"flaw={flaw}", "--backbones", "vit-tiny-shapes",
                "--strategies", "2d", "--results", str(out), *QUICK]  # fmt: skip

    out = tmp_path / "r"
    assert cli(*grid(out, "one-class-test")) == 1
    frame = read_results(out).frame
    assert list(frame["status"]) == ["failed"]  # was: ok, test AUC NaN
    assert "value" not in frame or frame["value"].isna().all()
    assert "test AUC is undefined" in frame["error"].iloc[0] and "1 distinct label(s): [0]" in frame["error"].iloc[0]
    assert not list((out / "probabilities").glob("*.parquet"))
    # partner: the same grid with every class in the test split is ok, with a finite AUC
    assert cli(*grid(tmp_path / "ok", "none")) == 0
    ok = read_results(tmp_path / "ok").frame
    assert set(ok["status"]) == {"ok"} and np.isfinite(ok["value"]).all()


# --- weights: a non-finite tensor is an error naming it ------------------------------------------------------------


def _checkpoint(tmp_path, poison: float | None):
    """The random vit-tiny-shapes weights as a file, with one tensor of one block set to ``poison``."""
    from safetensors.torch import save_file

    from liftbench.backbones.shapes.load import create

    model, _ = create("random", model_name="vit-tiny-shapes")
    state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    name = next(k for k in state if k.startswith("blocks.0.") and k.endswith("weight") and state[k].ndim == 2)
    if poison is not None:
        state[name].view(-1)[3] = poison
    path = tmp_path / f"weights-{poison}.safetensors"
    save_file(state, str(path))
    return path, name


def test_a_checkpoint_with_nan_in_one_layer_exits_2_naming_the_tensor_and_the_file(cli, tmp_path, capsys):
    path, tensor = _checkpoint(tmp_path, float("nan"))
    out = tmp_path / "r"
    grid = ["run", "--datasets", "flawed", "--backbones", "vit-tiny-shapes", "--strategies", "2d", "--results", str(out),
            "--quick", "--iterations", "4", "--warmup", "1", "--no-leaderboard", "--size", str(SIZE)]  # fmt: skip
    assert cli(*grid, "--weights", str(path)) == 2
    err = capsys.readouterr().err
    assert tensor in err and str(path) in err and "1 of" in err and "Traceback" not in err
    assert result_files(out) == []  # was: ok rows at AUC 0.5
    good, _ = _checkpoint(tmp_path, None)  # partner: the same file without the NaN runs
    assert cli(*grid, "--weights", str(good)) == 0
    assert set(read_results(out).frame["status"]) == {"ok"}


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_check_weights_names_every_non_finite_tensor(poison):
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    assert check_weights(model, "random:0") is model
    with torch.no_grad():
        model[1].running_var[0] = poison  # a buffer counts as much as a parameter
    with pytest.raises(UsageError, match=r"from 'ckpt.pth' are not finite .* 1 tensor\(s\): 1\.running_var \(1 of 3"):
        check_weights(model, "ckpt.pth", backbone="mine")
    with pytest.raises(PluginError, match="random initialisation is broken"):
        check_weights(model, "random:0")


def test_lifted_features_refuses_a_model_with_nan_weights(flawed_registry):
    from liftbench.api import lifted_features
    from liftbench.backbones.shapes.load import create

    model, _ = create("random", model_name="vit-tiny-shapes")
    volumes = np.zeros((1, 1, SIZE, SIZE, SIZE), np.uint8)
    assert lifted_features(model, "2d", volumes, registry=flawed_registry).pooled.isfinite().all()
    with torch.no_grad():
        model.patch_embed.proj.bias[0] = float("nan")
    with pytest.raises(UsageError, match=r"patch_embed\.proj\.bias"):
        lifted_features(model, "2d", volumes, registry=flawed_registry)


# --- features and losses: finite, or the run fails with that reason ------------------------------------------------


class _Lifted:
    """Stands in for a lifted backbone whose features for volume ``bad`` are NaN."""

    def __init__(self, bad: int | None):
        self.bad, self.seen = bad, 0

    def __call__(self, batch):
        from types import SimpleNamespace

        pooled = torch.ones(len(batch), 4)
        for i in range(len(batch)):
            if self.seen + i == self.bad:
                pooled[i, 1] = float("nan")
        self.seen += len(batch)
        return SimpleNamespace(pooled=pooled, patches=pooled[:, :, None, None, None])


def test_extract_names_the_volumes_whose_features_are_not_finite():
    from liftbench.api import extract

    volumes = np.zeros((10, 1, 4, 4, 4), np.uint8)
    assert extract(_Lifted(None), volumes, (0.5,), (0.5,), batch_size=4).shape == (10, 4)
    with pytest.raises(FloatingPointError, match=r"output for volumes 4\.\.7 is not finite \(1 of 16 values\)"):
        extract(_Lifted(5), volumes, (0.5,), (0.5,), batch_size=4)


def _fit(features: torch.Tensor):
    from liftbench.protocols.training import fit_head

    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    options = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 3, "iterations": 4, "warmup": 1}
    return fit_head(lambda index: features[index], labels, features, labels, 3, "multi-class", options, 0)


def test_a_non_finite_training_loss_fails_the_probe_at_that_step():
    features = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    head, auc, _ = _fit(features)  # partner: ordinary features train
    assert np.isfinite(auc)
    with pytest.raises(FloatingPointError, match=r"the training loss at step 1 is not finite \((nan|inf)\)"):
        _fit(features * 3e38)  # finite features whose logits overflow


FINETUNE = ["run", "--protocol", "finetune", "--datasets", "flawed", "--backbones", "vit-tiny-shapes", "--strategies", "2d"]


def test_a_finetune_that_diverges_is_a_failed_run_naming_the_features(cli, tmp_path, capsys):
    out = tmp_path / "r"
    rc = cli(*FINETUNE, "--results", str(out), "--lr", "1e30", *QUICK)  # one step at lr 1e30: the next forward overflows
    frame = read_results(out).frame
    assert rc == 1 and list(frame["status"]) == ["failed"], frame.get("error")
    assert "the lifted backbone's output for volumes 0..3 is not finite" in frame["error"].iloc[0]
    assert "Traceback" not in capsys.readouterr().err


def test_a_non_finite_finetune_loss_is_a_failed_run_naming_the_loss(cli, tmp_path, monkeypatch):
    """Fault injection: the finetune loop's loss made NaN from its second step (the first one is real)."""
    from types import SimpleNamespace

    import liftbench.protocols.finetune as finetune

    steps = []

    def cross_entropy(*args, **kwargs):
        steps.append(1)
        loss = torch.nn.functional.cross_entropy(*args, **kwargs)
        return loss if len(steps) == 1 else loss * float("nan")

    monkeypatch.setattr(finetune, "F", SimpleNamespace(cross_entropy=cross_entropy))
    out = tmp_path / "r"
    rc = cli(*FINETUNE, "--results", str(out), "--batch-size", "2", *QUICK)
    frame = read_results(out).frame
    assert rc == 1 and list(frame["status"]) == ["failed"] and len(steps) == 2
    assert "the training loss at step 2 is not finite (nan)" in frame["error"].iloc[0]


def test_check_finite_passes_finite_tensors_through():
    tensor = torch.tensor([1.0, -2.0])
    assert check_finite(tensor, "x") is tensor
    with pytest.raises(FloatingPointError, match=r"the loss is not finite \(inf\)"):
        check_finite(torch.tensor(float("inf")), "the loss")


# --- MedMNIST files: a damaged file is one paragraph naming it, what is wrong and where the release is -------------


def _rewrite(path, **changes):
    """Rewrite a MedMNIST npz with arrays replaced (value None: the array left out)."""
    arrays = dict(np.load(path))
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez_compressed(path, **arrays)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "truncated": (_truncate, "cannot be read as an npz archive"),
    "not-a-zip": (lambda p: p.write_text("<html>404 Not Found</html>"), "cannot be read as an npz archive"),
    "missing-key": (lambda p: _rewrite(p, val_labels=None), "it has no array 'val_labels' (found: test_images, test_labels, train_images, train_labels, val_images)"),
    "empty-split": (lambda p: _rewrite(p, test_images=np.zeros((0, 28, 28, 28), np.uint8), test_labels=np.zeros((0, 1), np.uint8)), "the test split is empty"),
    "label-out-of-range": (lambda p: _rewrite(p, train_labels=np.full((22, 1), 11, np.uint8)), "train_labels holds 11, outside 0..10"),
    "wrong-size": (lambda p: _rewrite(p, train_images=np.zeros((22, 32, 32, 32), np.uint8)), "train_images is uint8 (22, 32, 32, 32), not uint8 (N, 28, 28, 28)"),
    "float-images": (lambda p: _rewrite(p, val_images=np.zeros((22, 28, 28, 28), np.float32)), "val_images is float32"),
}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_medmnist_file_is_one_paragraph_naming_it_and_the_release(tmp_path, damage):
    path = write_medmnist_npz(tmp_path, "organmnist3d", 28)  # 11 classes, 22 volumes per split
    assert medmnist3d.load(28, data_root=tmp_path, flag="organmnist3d").num_classes == 11  # partner: intact file
    damage_fn, problem = DAMAGE[damage]
    damage_fn(path)
    with pytest.raises(UsageError) as raised:
        medmnist3d.load(28, data_root=tmp_path, flag="organmnist3d")
    message = str(raised.value)
    assert not isinstance(raised.value, MissingFileError)  # the file is there: it is broken, not missing
    assert message.startswith(f"{path.resolve()} is not a usable MedMNIST file") and problem in message, message
    assert "zenodo.org" in message and "MD5" in message and "\n" not in message


def test_a_damaged_medmnist_file_stops_the_run_with_exit_2(cli, tmp_path, capsys):
    root = tmp_path / "data"
    path = write_medmnist_npz(root, "nodulemnist3d", 28)
    _truncate(path)
    out = tmp_path / "r"
    args = ["run", "--datasets", "nodule", "--size", "28", "--data-root", str(root), "--backbones", "vit-tiny-shapes",
            "--strategies", "2d", "--results", str(out), *QUICK[:-2]]  # fmt: skip
    for dry in (["--dry-run"], []):  # the estimate opens the file too: a broken one is no "?" there
        rc = cli(*args, *dry)
        err = capsys.readouterr().err
        assert rc == 2 and f"{path.resolve()} is not a usable MedMNIST file: it cannot be read as an npz archive" in err
        assert "Traceback" not in err and "zenodo.org" in err
    assert result_files(out) == []


def test_zipfile_is_what_numpy_raises_on_a_truncated_file(tmp_path):
    """Guards the test above: the truncated file really is one numpy cannot read."""
    path = write_medmnist_npz(tmp_path, "nodulemnist3d", 28)
    _truncate(path)
    with pytest.raises((zipfile.BadZipFile, ValueError, OSError, EOFError)):
        dict(np.load(path))
