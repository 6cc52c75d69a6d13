"""The DINOv3 ConvNeXt-vs-ViT studies: listed, and planned to the grid they promise.

Planning locates each backbone's pretrained checkpoint (runs are keyed by it), so the tests lay out a Hugging
Face cache holding a stand-in file for each of the four checkpoints, where the hub cache would hold them.
"""

from __future__ import annotations

import pytest
from huggingface_hub import constants
from medmnist_files import write_medmnist_npz

from liftbench.cli import main
from liftbench.study.plan import plan_study, resolve

DATASETS = ("organ", "nodule", "fracture", "adrenal", "vessel", "synapse")
STUDIES = {"dinov3-cnn-vs-vit": "table1-probe", "dinov3-cnn-vs-vit-finetune": "table2-finetune"}
STRATEGIES = {"convnext-t": ("2d", "3d", "acs", "pcg"), "convnext-b": ("2d", "3d", "acs", "pcg"),
              "vits": ("2d", "3d", "pcm", "pcg"), "vitb": ("2d", "3d", "pcm", "pcg")}  # fmt: skip


REPOS = ("convnext_tiny.dinov3_lvd1689m", "convnext_base.dinov3_lvd1689m", "vit_small_patch16_dinov3.lvd1689m",
         "vit_base_patch16_dinov3.lvd1689m")  # fmt: skip


@pytest.fixture(scope="module")
def medmnist_root(tmp_path_factory):
    """Tiny MedMNIST files of the six sets at 64^3, in the real on-disk format."""
    root = tmp_path_factory.mktemp("medmnist")
    for flag in DATASETS:
        write_medmnist_npz(root, f"{flag}mnist3d", 64)
    return root


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, medmnist_root):
    """A Hugging Face cache in which the four checkpoints are present (stand-in bytes: nothing loads them)."""
    root = tmp_path / "hub"
    for repo in REPOS:
        snapshot = root / f"models--timm--{repo}" / "snapshots" / "abc123"
        snapshot.mkdir(parents=True)
        (snapshot / "model.safetensors").write_bytes(repo.encode())
        (root / f"models--timm--{repo}" / "refs").mkdir()
        (root / f"models--timm--{repo}" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LIFTBENCH_DATA_ROOT", str(medmnist_root))
    return root


@pytest.mark.parametrize("name, protocol", STUDIES.items())
def test_the_study_plans_every_strategy_each_family_takes(registry, hub_cache, name, protocol):
    study = resolve(registry.get("study", name).load(), registry)
    runs = plan_study(study, registry)
    assert len(runs) == len(DATASETS) * 4 * 4 * 5 == 480
    assert not [r for r in runs if r.skip_reason]  # every pair lifts: no strategy is given a family it cannot lift
    planned = {}
    for grid in study.grids:
        assert grid.datasets == DATASETS and grid.protocols == (protocol,)
        assert grid.seeds == tuple(range(5)) and grid.size == 64
        planned.update(dict.fromkeys(grid.backbones, grid.strategies))
    assert planned == STRATEGIES


def test_listed_and_dry_run_from_tiny_files(hub_cache, medmnist_root, tmp_path, capsys):
    """``liftbench list studies`` shows both; a dry run for the GPU cluster plans the 480 runs from the files."""
    assert main(["list", "studies"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in STUDIES)
    for name in STUDIES:
        argv = ["run", "--study", name, "--dry-run", "--data-root", str(medmnist_root), "--results", str(tmp_path / name),
                "--device", "cuda:7", "--executor", "slurm"]  # fmt: skip
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "plan: 480 runs; 0 already in" in out and "0 skipped pairs, 480 to run" in out


def test_offline_without_the_checkpoints_planning_says_which_file_to_get(medmnist_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["run", "--study", "dinov3-cnn-vs-vit", "--dry-run", "--data-root", str(medmnist_root), "--results", str(tmp_path / "r"),
            "--device", "cuda:7", "--executor", "slurm"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "timm/convnext_tiny.dinov3_lvd1689m" in err and "--weights random" in err and "Traceback" not in err
