"""A tiny study run into a folder, shared by the site tests (plain and in a browser): tiny ViT and CNN, two
strategies each, two seeds, a fast probe — a few seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

from liftbench.study.model import Grid, Layout, Study
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


COMBINED_LAYOUT = '\n[leaderboard]\nprotocols = ["linear", "finetune"]\nmetrics = ["auc", "acc"]\nreported = true\ncombine = true\n'


def combined_results(folder: Path) -> Path:
    """The tiny study's runs twice, the copy relabelled protocol ``finetune``, in a folder whose study asks for the
    protocols side by side (the paper's Table 3 layout) with the paper's reported rows: measured and reported
    cells in one combined table. Relabelling keeps the test fast; only the layout is under test."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from liftbench.run.results import RUN_SUFFIX

    source = tiny_results(Path(folder) / "tiny")
    out = Path(folder) / "combined"
    out.mkdir()
    for path in sorted(source.glob(f"*{RUN_SUFFIX}")):
        shutil.copy(path, out / path.name)
        table = pq.read_table(path)
        key = f"ft-{path.stem}"
        for name, value in (("protocol", "finetune"), ("run_key", key)):
            table = table.set_column(table.schema.get_field_index(name), name, pa.array([value] * table.num_rows))
        pq.write_table(table, out / f"{key}{RUN_SUFFIX}")
    text = (source / "study.toml").read_text(encoding="utf-8")
    start = text.index("[leaderboard]")
    end = text.index("\n[", start + 1)
    (out / "study.toml").write_text(text[:start] + COMBINED_LAYOUT.lstrip("\n") + text[end:], encoding="utf-8")
    return out


def add_figure1(results: Path) -> list[Path]:
    """Figure 1 of one synthetic volume with the tiny ViT (random weights), slice-2D and PlaneCycle, where
    ``liftbench show --out <results>/figure1`` would put it."""
    from liftbench.datasets.synthetic import make_split
    from liftbench.report.figure1 import draw, panels

    volume = make_split(1, 32, seed=0).volumes[0]
    rows = panels("tiny-vit", ["2d", "pcg"], volume, weights="random", registry=registry_with())
    return draw(volume, rows, Path(results) / "figure1" / "synthetic_tiny-vit_test0", "tiny-vit, synthetic test volume 0")
