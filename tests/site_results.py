"""A tiny study run into a folder, shared by the site tests (plain and in a browser): tiny ViT and CNN, two
strategies each, two seeds, a fast probe — a few seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

from liftbench.study import Grid, Layout, Study
from liftbench.testing import FAST_PROBE, TINY_DATA, registry_with, run_study

TINY_STUDY = Study(
    name="tiny",
    description="tiny ViT and CNN on the synthetic set, for the site tests",
    leaderboard=Layout(protocols=("linear",), metrics=("auc", "acc"), baseline="2d"),
    grids=(Grid(datasets=("synthetic",), backbones=("tiny-vit", "tiny-cnn"), strategies=("2d", "pcg"), protocols=("linear",),
                seeds=(0, 1), size=32, weights="random", options=dict(FAST_PROBE), dataset_options=dict(TINY_DATA)),),
)  # fmt: skip


def tiny_results(folder: Path) -> Path:
    """Run the tiny study into ``folder/results`` (cache in ``folder/cache``) and return the results folder."""
    run_study(registry_with(), folder, TINY_STUDY)
    return Path(folder) / "results"
