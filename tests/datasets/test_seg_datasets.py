"""The Table 3 segmentation datasets (LIDC, MMWHS CT/MRI) and the synthetic set's segmentation side, on tiny
files in the releases' exact layouts (tests/helpers/seg_files.py): nothing here can be downloaded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchio as tio
from seg_files import (
    ANSWER_SETS,
    LIDC_SHAPE,
    MMWHS_SHAPE,
    lidc_patch,
    write_lidc,
    write_mmwhs,
    write_nifti,
    write_patch,
    write_split_csv,
)
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from liftbench.datasets import lidc, mmwhs, synthetic
from liftbench.datasets.data_folder import ENV_ROOT
from liftbench.datasets.mmwhs_augment import augment as mmwhs_augment
from liftbench.errors import MissingFileError, UsageError

pytestmark = pytest.mark.filterwarnings("ignore:The maximum displacement is larger:RuntimeWarning")


@pytest.fixture(autouse=True)
def _no_env_root(monkeypatch):
    monkeypatch.delenv(ENV_ROOT, raising=False)


def expected_mask(path) -> np.ndarray:
    with np.load(path) as npz:
        answers = [npz[k].astype(int) for k in npz.files if k.startswith("answer")]
        shape = npz["voxel"].shape
    if not answers:
        return np.zeros(shape, np.uint8)
    return (np.sum(answers, axis=0) >= len(answers) / 2).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------- LIDC


def test_lidc_loads_the_release_layout(tmp_path):
    folder = write_lidc(tmp_path, n_train=5, n_test=3)
    ds = lidc.load(data_root=tmp_path)
    assert ds.name == "lidc" and ds.task == "segmentation" and ds.size == 160
    assert ds.mask_classes == ("background", "nodule") and ds.has_masks
    assert ds.inplane == {"network": 160, "featdice": 640}
    assert {k: len(s) for k, s in ds.splits.items()} == {"train": 5, "val": 0, "test": 3}
    names = sorted(p.name for p in (folder / "nodule").iterdir())
    for split, chosen in (("train", names[:5]), ("test", names[5:])):
        s = ds.splits[split]
        assert s.volumes.shape == (len(chosen), 1, *LIDC_SHAPE) and s.volumes.dtype == np.uint8
        assert s.masks.shape == (len(chosen), *LIDC_SHAPE) and s.masks.dtype == np.uint8
        assert (s.labels == 0).all() and s.labels.dtype == np.int64
        for i, name in enumerate(chosen):  # CSV order, native voxels, the consensus mask
            with np.load(folder / "nodule" / name) as npz:
                np.testing.assert_array_equal(s.volumes[i, 0], npz["voxel"])
            np.testing.assert_array_equal(s.masks[i], expected_mask(folder / "nodule" / name))
    assert ds.splits["val"].volumes.shape == (0, 1, *LIDC_SHAPE) and ds.splits["val"].masks.shape == (0, *LIDC_SHAPE)
    assert ds.splits["train"].masks.any() and ds.augment is lidc.augment


def test_lidc_sizes_and_featdice_size(tmp_path):
    write_lidc(tmp_path, 2, 1)
    ds = lidc.load(48, data_root=tmp_path, featdice_size=320)
    assert ds.size == 48 and ds.inplane == {"network": 48, "featdice": 320}
    assert ds.splits["train"].volumes.shape[2:] == LIDC_SHAPE  # stored native; the protocol resizes
    with pytest.raises(UsageError, match="size must be >= 16"):
        lidc.load(8, data_root=tmp_path)
    with pytest.raises(UsageError, match="unknown option"):
        lidc.load(data_root=tmp_path, colour="red")


@pytest.mark.parametrize(
    ("keys", "needed"),
    [
        (("answer1",), 1),
        (("answer2", "answer4"), 1),
        (("answer1", "answer2", "answer3"), 2),
        (ANSWER_SETS[3], 2),
        ((), None),
    ],
    ids=["1of1", "1of2", "2of3", "2of4", "none"],
)
def test_lidc_mask_is_half_of_the_available_readers(tmp_path, keys, needed):
    """Column j of the patch carries j votes (capped at the readers present): the mask starts at ``needed``."""
    shape = (2, 4, 6)
    answers = {key: np.broadcast_to(np.arange(6) > r, shape) for r, key in enumerate(keys)}
    folder = tmp_path / "lidc"
    write_patch(folder / "nodule" / "a.npz", np.full(shape, 7, np.uint8), answers)
    write_split_csv(folder, ["a.npz"], [])
    mask = lidc.load(data_root=tmp_path).splits["train"].masks[0]
    votes = np.minimum(np.arange(6), len(keys))
    want = np.zeros(6, bool) if needed is None else votes >= needed
    np.testing.assert_array_equal(mask, np.broadcast_to(want, shape).astype(np.uint8))
    np.testing.assert_array_equal(lidc.consensus_mask(list(answers.values()), shape), mask)


def test_lidc_root_from_environment_and_bare_names(tmp_path, monkeypatch):
    folder = tmp_path / "lidc"
    voxel, answers = lidc_patch(np.random.default_rng(0))
    write_patch(folder / "nodule" / "0001.npz", voxel, answers)
    write_split_csv(folder, ["0001"], ["0001.npz"])  # an all-digit name stays text; a bare name gets .npz
    monkeypatch.setenv(ENV_ROOT, str(tmp_path))
    ds = lidc.load()
    assert len(ds.splits["train"]) == len(ds.splits["test"]) == 1
    assert ds.info["folder"] == str(folder.resolve())


def _message(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_lidc_without_any_data_root_says_where_to_put_it():
    with pytest.raises(MissingFileError) as excinfo:
        lidc.load()
    message = _message(excinfo)
    assert "--data-root" in message and ENV_ROOT in message and "DIR/lidc/" in message
    assert "ACSConv" in message and "train_test_split.csv" in message


def test_lidc_missing_csv_names_file_layout_and_source(tmp_path):
    with pytest.raises(MissingFileError) as excinfo:
        lidc.load(data_root=tmp_path / "nowhere")
    message = _message(excinfo)
    folder = (tmp_path / "nowhere" / "lidc").resolve()
    assert str(folder / "train_test_split.csv") in message
    assert "<folder>/nodule/<name>.npz" in message and "'voxel'" in message and "answer1" in message
    assert "github.com/M3DV/ACSConv" in message and str(folder) in message


def test_lidc_missing_patch_names_it(tmp_path):
    folder = write_lidc(tmp_path, 2, 2)
    victim = sorted((folder / "nodule").iterdir())[3]
    victim.unlink()
    with pytest.raises(MissingFileError) as excinfo:
        lidc.load(data_root=tmp_path)
    assert str(victim.resolve()) in _message(excinfo) and "1 patch file(s)" in _message(excinfo)


def test_lidc_patches_of_different_shapes_are_an_error_naming_both(tmp_path):
    folder = write_lidc(tmp_path, 2, 1)
    odd = sorted((folder / "nodule").iterdir())[2]
    voxel, answers = lidc_patch(np.random.default_rng(1), shape=(12, 16, 18))
    write_patch(odd, voxel, answers)
    with pytest.raises(UsageError) as excinfo:
        lidc.load(data_root=tmp_path)
    message = _message(excinfo)
    assert str(odd.resolve()) in message and "(12, 16, 18)" in message and "same shape" in message


@pytest.mark.parametrize("fault", ["no-voxel", "float-voxel", "answer-shape", "garbage", "csv-column"])
def test_lidc_malformed_files_are_usage_errors_naming_the_file(tmp_path, fault):
    folder = write_lidc(tmp_path, 2, 1)
    bad = sorted((folder / "nodule").iterdir())[0]
    voxel = np.zeros(LIDC_SHAPE, np.uint8)
    if fault == "no-voxel":
        np.savez(bad, image=voxel)
    elif fault == "float-voxel":
        np.savez(bad, voxel=voxel.astype(np.float32))
    elif fault == "answer-shape":
        np.savez(bad, voxel=voxel, answer1=np.zeros((3, 3, 3), bool))
    elif fault == "garbage":
        bad.write_bytes(b"not a zip file at all")
    else:
        bad = folder / "train_test_split.csv"
        bad.write_text("training,testing\na.npz,b.npz\n")
    with pytest.raises(UsageError) as excinfo:
        lidc.load(data_root=tmp_path)
    message = _message(excinfo)
    assert str(bad.resolve()) in message and "<folder>/nodule/<name>.npz" in message


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """An off-centre bar: a mask and an image that is exactly the mask, scaled (threshold 0.5 gives it back)."""
    mask = torch.zeros(5, 24, 24, dtype=torch.int64)
    mask[:, 3:9, 4:20] = 1
    mask[2:, 14:17, 6:10] = 1
    return (mask * 0.8)[None].float(), mask


@pytest.mark.parametrize("module", [lidc, synthetic])
def test_inplane_augment_fixed_moves_image_and_mask_together(module):
    image, mask = _pair()
    changed = 0
    for seed in range(8):
        out_image, out_mask = module.augment(image, mask, np.random.default_rng(seed), "fixed")
        assert out_image.shape == image.shape and out_image.dtype == image.dtype
        assert out_mask.shape == mask.shape and out_mask.dtype == torch.int64
        torch.testing.assert_close((out_image[0] > 0.5).long(), out_mask, rtol=0, atol=0)
        changed += not torch.equal(out_mask, mask)
        again = module.augment(image, mask, np.random.default_rng(seed), "fixed")  # deterministic in rng
        assert torch.equal(again[0], out_image) and torch.equal(again[1], out_mask)
    assert changed == 8
    with pytest.raises(ValueError, match="mode"):
        module.augment(image, mask, np.random.default_rng(0), "sometimes")


def test_lidc_augment_authors_mode_leaves_the_mask_behind():
    image, mask = _pair()
    for seed in range(4):
        fixed = lidc.augment(image, mask, np.random.default_rng(seed), "fixed")
        out_image, out_mask = lidc.augment(image, mask, np.random.default_rng(seed), "authors")
        assert out_mask is mask  # untouched, as in the released code
        assert torch.equal(out_image, fixed[0])  # the image gets the very same transform
        assert not torch.equal((out_image[0] > 0.5).long(), mask)


def test_lidc_augment_is_one_rotation_then_flips_for_the_whole_volume():
    """Angle U(-15, 15), then a horizontal and a vertical coin, drawn in that order from the generator."""
    image, mask = _pair()
    flips = set()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        angle, h, v = rng.uniform(-15, 15), rng.random() < 0.5, rng.random() < 0.5
        flips.add((h, v))
        want = F.rotate(mask, angle, interpolation=InterpolationMode.NEAREST, fill=0)
        want = F.vertical_flip(want) if v else want
        want = F.horizontal_flip(want) if h else want
        _, out = lidc.augment(image, mask, np.random.default_rng(seed), "fixed")
        assert torch.equal(out, want)
    assert len(flips) == 4


def test_synthetic_set_is_segmentation_ready():
    ds = synthetic.load(16, n_train=3, n_val=3, n_test=3)
    assert ds.mask_classes == ("background", "lesion") and ds.augment is synthetic.augment and ds.has_masks
    image, mask = _pair()
    for seed in range(3):  # no authors to reproduce: both modes are the correct one
        a = synthetic.augment(image, mask, np.random.default_rng(seed), "authors")
        f = synthetic.augment(image, mask, np.random.default_rng(seed), "fixed")
        assert torch.equal(a[0], f[0]) and torch.equal(a[1], f[1])


# ---------------------------------------------------------------------------------------------------- MMWHS


@pytest.mark.parametrize("modality", ["CT", "MRI"])
def test_mmwhs_loads_the_release_layout(tmp_path, modality):
    write_mmwhs(tmp_path, modality, counts=(3, 2))
    ds = mmwhs.load(data_root=tmp_path, modality=modality)
    assert ds.name == f"mmwhs-{modality.lower()}" and ds.task == "segmentation" and ds.size == 64
    assert ds.mask_classes == ("background", *(f"structure-{k}" for k in range(1, 6)))
    assert ds.inplane == {} and ds.augment is not None
    assert {k: len(s) for k, s in ds.splits.items()} == {"train": 3, "val": 0, "test": 2}
    for split in ds.splits.values():
        assert split.volumes.shape[1:] == (1, 64, 64, 64) and split.volumes.dtype == np.float32
        assert split.masks.shape[1:] == (64, 64, 64) and split.masks.dtype == np.uint8
    train = ds.splits["train"]
    assert train.volumes.min() == 0.0 and train.volumes.max() == 1.0  # the window's both ends are reached
    assert set(np.unique(train.masks)) == set(range(6))


def _torchio_reference(path_image, path_label, modality, size):
    """The authors' preprocessing written with torchio, image and label separately."""
    low, high = mmwhs.WINDOWS[modality]
    image = tio.Compose(
        [tio.Clamp(low, high), tio.RescaleIntensity(in_min_max=(low, high), out_min_max=(0, 1)), tio.CropOrPad(size)]
    )(tio.ScalarImage(path_image))
    label = tio.CropOrPad(size)(tio.LabelMap(path_label))
    return image.data[0].numpy(), label.data[0].numpy()


@pytest.mark.parametrize(("modality", "size"), [("CT", 16), ("MRI", 19), ("CT", 25)])
def test_mmwhs_preprocessing_equals_the_authors_torchio_pipeline(tmp_path, modality, size):
    folder = write_mmwhs(tmp_path, modality, counts=(2, 1))
    ds = mmwhs.load(size, data_root=tmp_path, modality=modality)
    images = sorted((folder / "training_set").glob("*image.nii.gz"))
    for i, image_path in enumerate(images):
        label_path = image_path.with_name(image_path.name.replace("image", "label"))
        image, label = _torchio_reference(image_path, label_path, modality, size)
        np.testing.assert_allclose(ds.splits["train"].volumes[i, 0], image, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(ds.splits["train"].masks[i], label)


@pytest.mark.parametrize("size", [15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 27])
def test_crop_or_pad_equals_torchio_on_odd_and_even_differences(size):
    array = np.random.default_rng(size).normal(size=MMWHS_SHAPE).astype(np.float32)
    ours = mmwhs.crop_or_pad(array, size)
    theirs = tio.CropOrPad(size)(torch.from_numpy(array)[None])[0].numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("axis", [1, 2])
def test_mmwhs_slice_axis_moves_that_axis_to_depth(tmp_path, axis):
    write_mmwhs(tmp_path, "CT", counts=(1, 1), shape=(20, 14, 17))
    base = mmwhs.load(16, data_root=tmp_path)
    moved = mmwhs.load(16, data_root=tmp_path, slice_axis=axis)
    for split in ("train", "test"):
        np.testing.assert_array_equal(
            moved.splits[split].volumes[:, 0], np.moveaxis(base.splits[split].volumes[:, 0], axis + 1, 1)
        )
        np.testing.assert_array_equal(moved.splits[split].masks, np.moveaxis(base.splits[split].masks, axis + 1, 1))
    assert moved.info["slice_axis"] == str(axis)
    with pytest.raises(UsageError, match="slice_axis"):
        mmwhs.load(16, data_root=tmp_path, slice_axis=3)


def test_mmwhs_root_option_and_spacing(tmp_path):
    folder = write_mmwhs(tmp_path / "elsewhere", "MRI", counts=(2, 1), spacing=(1.5, 1.0, 2.0))
    ds = mmwhs.load(16, data_root=tmp_path / "unused", modality="MRI", root=str(folder), slice_axis=2)
    assert ds.info["folder"] == str(folder.resolve())
    assert ds.info["augment_spacing_mm"] == "2x1.5x1"  # along D, H, W


@pytest.mark.parametrize("fault", ["no-root", "no-folder", "empty-folder", "no-sdf", "no-label"])
def test_mmwhs_missing_files_name_file_and_layout(tmp_path, fault):
    folder = write_mmwhs(tmp_path, "CT", counts=(2, 1))
    image = sorted((folder / "testing_set").glob("*image.nii.gz"))[0]
    named = folder.resolve()
    if fault == "no-folder":
        named = folder.resolve() / "testing_set"
        for path in named.iterdir():
            path.unlink()
        named.rmdir()
    elif fault == "empty-folder":
        named = folder.resolve() / "testing_set"
        for path in named.iterdir():
            path.unlink()
    elif fault in ("no-sdf", "no-label"):
        named = image.with_name(image.name.replace("image", fault[3:])).resolve()
        named.unlink()
    with pytest.raises(MissingFileError) as excinfo:
        mmwhs.load(16, data_root=None if fault == "no-root" else tmp_path)
    message = _message(excinfo)
    assert "training_set/" in message and "<case>sdf.nii.gz" in message and "integer labels 0..5" in message
    assert "third-party preprocessed" in message
    if fault == "no-root":
        assert "--data-root" in message and "DIR/mmwhs/CT/" in message
    else:
        assert str(named) in message


@pytest.mark.parametrize(
    ("values", "shown"), [((0, 205, 500, 820), "0, 205, 500, 820"), ((0, 1, 6), "0, 1, 6"), ((0, 1.5), "0, 1.5")]
)
def test_mmwhs_labels_outside_0_to_5_name_file_and_values(tmp_path, values, shown):
    folder = write_mmwhs(tmp_path, "CT", counts=(2, 1))
    label = sorted((folder / "training_set").glob("*label.nii.gz"))[1]
    data = np.resize(np.array(values, np.float32), MMWHS_SHAPE)
    write_nifti(label, data)
    with pytest.raises(UsageError) as excinfo:
        mmwhs.load(16, data_root=tmp_path)
    message = _message(excinfo)
    assert str(label.resolve()) in message and f"label values {shown};" in message and "0..5" in message


@pytest.mark.parametrize("fault", ["garbage", "shape", "4d"])
def test_mmwhs_malformed_files_are_usage_errors_naming_the_file(tmp_path, fault):
    folder = write_mmwhs(tmp_path, "MRI", counts=(1, 1))
    bad = sorted((folder / "testing_set").glob("*label.nii.gz"))[0]
    if fault == "garbage":
        bad.write_bytes(b"\x1f\x8b not really gzip")
    elif fault == "shape":
        write_nifti(bad, np.zeros((20, 18, 21), np.uint8))
    else:
        write_nifti(bad, np.zeros((*MMWHS_SHAPE, 2), np.uint8))
    with pytest.raises(UsageError) as excinfo:
        mmwhs.load(16, data_root=tmp_path, modality="MRI")
    message = _message(excinfo)
    assert str(bad.resolve()) in message and "<case>label.nii.gz" in message


def _heart(corner: bool = False, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Two touching boxes (labels 1 and 3) and an image that is their union at 0.8; ``corner`` puts one small
    box near the origin, far from its point reflection."""
    mask = torch.zeros(size, size, size, dtype=torch.int64)
    if corner:
        mask[5:12, 6:13, 4:11] = 1
    else:
        mask[6:24, 7:22, 5:20] = 1
        mask[10:20, 12:19, 20:27] = 3
    return (mask > 0).float()[None] * 0.8, mask


def _dice(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize("mode", ["fixed", "authors"])
def test_mmwhs_augment_moves_image_and_mask_together(mode):
    image, mask = _heart()
    rng_state = torch.get_rng_state()
    untouched = 0
    for seed in range(6):
        out_image, out_mask = mmwhs_augment(image, mask, np.random.default_rng(seed), mode)
        assert out_image.shape == image.shape and out_image.dtype == torch.float32
        assert out_mask.shape == mask.shape and out_mask.dtype == torch.int64
        assert set(out_mask.unique().tolist()) <= {0, 1, 3}
        assert _dice(out_image[0] > 0.4, out_mask > 0) > 0.9  # linear vs nearest resampling differ at edges only
        untouched += out_mask is mask
        again = mmwhs_augment(image, mask, np.random.default_rng(seed), mode)
        assert torch.equal(again[0], out_image) and torch.equal(again[1], out_mask)
    assert torch.equal(torch.get_rng_state(), rng_state)  # torchio was seeded in a forked state
    if mode == "authors":
        assert 0 < untouched < 6  # the coin: some samples come back as they were
    else:
        assert untouched == 0


def test_mmwhs_augment_authors_heads_flips_all_three_axes():
    """At heads the released pipeline always flips every axis: the box lands near its point reflection
    (the affine then moves it by a few voxels), far from where it was."""
    image, mask = _heart(corner=True)
    com = (mask > 0).nonzero().float().mean(0)
    reflected = (mask.shape[0] - 1) - com
    for seed in range(6):
        heads = bool(np.random.default_rng(seed).integers(0, 2))
        _, out = mmwhs_augment(image, mask, np.random.default_rng(seed), "authors")
        if heads:
            moved = (out > 0).nonzero().float().mean(0)
            assert torch.dist(moved, reflected) < torch.dist(moved, com) / 2
        else:
            assert out is mask


# ---------------------------------------------------------------------------------------------------- registry, CLI


def test_registered_with_their_sizes_and_options():
    from liftbench.plugin.manager import build_registry

    registry = build_registry()
    entry = registry.get("dataset", "lidc")
    assert entry.has_masks and not entry.has_labels and entry.default_size == 160 and "ACSConv" in entry.description
    assert registry.get("dataset", "lidc-idri") is entry
    for modality in ("CT", "MRI"):
        entry = registry.get("dataset", f"mmwhs-{modality.lower()}")
        assert entry.has_masks and not entry.has_labels and entry.default_size == 64
        assert entry.options == {"modality": modality} and set(entry.parameters) == {"slice_axis", "root"}


def test_cli_missing_lidc_release_exits_2_naming_the_file(tmp_path, capsys, monkeypatch):
    """Needs the featdice protocol to accept segmentation datasets; the loader's error must reach the user."""
    from liftbench.cli import main

    empty = tmp_path / "EMPTY"
    empty.mkdir()
    args = ["run", "--datasets", "lidc", "--protocol", "featdice", "--backbones", "vit-tiny-shapes"]
    rc = main([*args, "--strategies", "2d", "--data-root", str(empty), "--results", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert rc == 2, captured.out + captured.err
    text = captured.out + captured.err
    assert str(empty.resolve() / "lidc" / "train_test_split.csv") in text and "ACSConv" in text
    assert "Traceback" not in text
