"""The DINOv3 ConvNeXt-vs-ViT studies: listed, and planned to the grid they promise."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from liftbench.cli import main
from liftbench.study_plan import plan_study, resolve

DATASETS = ("organ", "nodule", "fracture", "adrenal", "vessel", "synapse")
STUDIES = {"dinov3-cnn-vs-vit": "table1-probe", "dinov3-cnn-vs-vit-finetune": "table2-finetune"}
STRATEGIES = {"convnext-t": ("2d", "3d", "acs", "pcg"), "convnext-b": ("2d", "3d", "acs", "pcg"),
              "vits": ("2d", "3d", "pcm", "pcg"), "vitb": ("2d", "3d", "pcm", "pcg")}  # fmt: skip


@pytest.mark.parametrize("name, protocol", STUDIES.items())
def test_the_study_plans_every_strategy_each_family_takes(registry, name, protocol):
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


def test_listed_and_dry_run_from_tiny_files(tmp_path, capsys):
    """``liftbench list studies`` shows both; a dry run for the GPU cluster plans the 480 runs from the files."""
    sys.path.insert(0, str(Path(__file__).parent))
    from medmnist_files import write_medmnist_npz

    assert main(["list", "studies"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in STUDIES)
    root = tmp_path / "medmnist"
    for flag in DATASETS:
        write_medmnist_npz(root, f"{flag}mnist3d", 64)
    for name in STUDIES:
        argv = ["run", "--study", name, "--dry-run", "--data-root", str(root), "--results", str(tmp_path / name),
                "--device", "cuda:7", "--executor", "slurm"]  # fmt: skip
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "plan: 480 runs; 0 already in" in out and "0 skipped pairs, 480 to run" in out
