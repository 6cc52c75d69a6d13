"""The MedMNIST 3D loader, on tiny files in the real format (no dataset can be downloaded here)."""

from __future__ import annotations

import medmnist
import numpy as np
import pytest
from liftbench_plugins.datasets import MEDMNIST3D
from medmnist_files import write_medmnist_npz

from liftbench.datasets import medmnist3d
from liftbench.datasets.volumes import SPLITS
from liftbench.errors import MissingFileError, UsageError

FLAGS = [flag for flag, _ in MEDMNIST3D.values()]


@pytest.mark.parametrize("size", [28, 64])
@pytest.mark.parametrize("flag", FLAGS)
def test_loads_every_flag_and_size(tmp_path, flag, size):
    info = medmnist.INFO[flag]
    k = len(info["label"])
    counts = (k + 2, k, k + 1)
    path = write_medmnist_npz(tmp_path, flag, size, n_per_split=counts, seed=1)
    assert path.name == (f"{flag}.npz" if size == 28 else f"{flag}_64.npz")

    ds = medmnist3d.load(size, data_root=str(tmp_path), flag=flag)

    assert ds.size == size
    assert ds.task == info["task"] and ds.task in ("binary-class", "multi-class")
    assert ds.num_classes == k
    assert list(ds.label_names) == [info["label"][str(i)] for i in range(k)]
    assert ds.info["flag"] == flag and ds.info["file"] == str(path.resolve())
    assert "MedMNIST" in ds.info["citation"]
    assert not ds.has_masks
    raw = np.load(path)
    for split, n in zip(SPLITS, counts, strict=True):
        s = ds.splits[split]
        assert s.volumes.shape == (n, 1, size, size, size)
        assert s.volumes.dtype == np.uint8
        assert s.labels.dtype == np.int64 and s.labels.shape == (n,)
        assert s.masks is None
        assert set(s.labels.tolist()) == set(range(k))
        np.testing.assert_array_equal(s.volumes[:, 0], raw[f"{split}_images"])
        np.testing.assert_array_equal(s.labels, raw[f"{split}_labels"][:, 0])


def test_registered_name_is_the_short_name(tmp_path):
    write_medmnist_npz(tmp_path, "nodulemnist3d", 28)
    assert medmnist3d.load(28, data_root=tmp_path, flag="nodulemnist3d").name == "nodule"


def test_helper_file_matches_medmnist_format(tmp_path):
    """medmnist's own class reads the helper's file (only its count-asserting ``len`` would object)."""
    write_medmnist_npz(tmp_path, "fracturemnist3d", 64)
    ds = medmnist.FractureMNIST3D(split="val", size=64, root=str(tmp_path), download=False)
    img, target = ds[0]
    assert img.shape == (1, 64, 64, 64) and target.shape == (1,)
    assert ds.imgs.dtype == np.uint8 and ds.labels.shape == (len(ds.imgs), 1)


def test_missing_file_says_what_where_and_url(tmp_path):
    root = tmp_path / "data"
    with pytest.raises(MissingFileError) as excinfo:
        medmnist3d.load(64, data_root=str(root), flag="organmnist3d")
    message = str(excinfo.value)
    assert "organmnist3d_64.npz" in message
    assert str(root.resolve()) in message
    assert medmnist.INFO["organmnist3d"]["url_64"] in message
    assert "--data-root" in message and "LIFTBENCH_DATA_ROOT" in message
    assert "\n" not in message


def test_missing_file_at_28_names_the_28_file(tmp_path):
    with pytest.raises(MissingFileError) as excinfo:
        medmnist3d.load(28, data_root=tmp_path, flag="vesselmnist3d")
    assert "vesselmnist3d.npz" in str(excinfo.value)
    assert medmnist.INFO["vesselmnist3d"]["url"] in str(excinfo.value)


@pytest.mark.parametrize("size", [32, 128, 224])
def test_bad_size_is_a_usage_error(tmp_path, size):
    with pytest.raises(UsageError, match="28, 64"):
        medmnist3d.load(size, data_root=tmp_path, flag="organmnist3d")


def test_unknown_flag_and_option_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="organmnist3d"):
        medmnist3d.load(28, data_root=tmp_path, flag="pathmnist")
    with pytest.raises(UsageError, match="bogus"):
        medmnist3d.load(28, data_root=tmp_path, flag="organmnist3d", bogus=1)


def test_env_var_data_root(tmp_path, monkeypatch):
    path = write_medmnist_npz(tmp_path / "env", "adrenalmnist3d", 28)
    monkeypatch.setenv("LIFTBENCH_DATA_ROOT", str(tmp_path / "env"))
    ds = medmnist3d.load(28, flag="adrenalmnist3d")
    assert ds.info["file"] == str(path.resolve())
    # an explicit data_root wins over the environment variable
    with pytest.raises(MissingFileError, match="elsewhere"):
        medmnist3d.load(28, data_root=tmp_path / "elsewhere", flag="adrenalmnist3d")


def test_loads_are_cached_until_the_file_changes(tmp_path):
    write_medmnist_npz(tmp_path, "synapsemnist3d", 28, seed=0)
    first = medmnist3d.load(28, data_root=tmp_path, flag="synapsemnist3d")
    assert medmnist3d.load(28, data_root=str(tmp_path), flag="synapsemnist3d") is first
    write_medmnist_npz(tmp_path, "synapsemnist3d", 28, n_per_split=(5, 3, 4), seed=2)
    second = medmnist3d.load(28, data_root=tmp_path, flag="synapsemnist3d")
    assert second is not first and len(second.splits["train"]) == 5


def test_download_only_when_asked_and_failure_is_a_missing_file_error(tmp_path, monkeypatch):
    """``download=True`` goes through medmnist's own ``download`` (faked here: no network)."""
    calls = []

    def fake_download(self):
        calls.append((self.flag, self.size_flag, self.root))
        write_medmnist_npz(self.root, self.flag, self.size)

    monkeypatch.setattr(medmnist.dataset.MedMNIST, "download", fake_download)
    root = tmp_path / "new" / "root"
    with pytest.raises(MissingFileError):
        medmnist3d.load(64, data_root=root, flag="nodulemnist3d")  # download not asked for
    assert calls == []
    ds = medmnist3d.load(64, data_root=root, flag="nodulemnist3d", download=True)
    assert calls == [("nodulemnist3d", "_64", str(root.resolve()))]
    assert ds.splits["test"].volumes.shape[1:] == (1, 64, 64, 64)

    def failing_download(self):
        raise RuntimeError("\n    Automatic download failed!")

    monkeypatch.setattr(medmnist.dataset.MedMNIST, "download", failing_download)
    with pytest.raises(MissingFileError, match="download failed.*vesselmnist3d.npz") as excinfo:
        medmnist3d.load(28, data_root=root, flag="vesselmnist3d", download=True)
    assert "\n" not in str(excinfo.value)
