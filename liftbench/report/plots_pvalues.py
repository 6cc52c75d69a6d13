"""Figure 3 of the PlaneCycle paper for any results: paired t-test p-values, every strategy against every other.

One figure per protocol and dataset (``pvalues_<protocol>_<dataset>.png|svg``), one panel per backbone and
metric. Cell (i, j) is :func:`liftbench.report.paired.paired_test` of row i against row j over their common seeds,
on the per-seed values of the leaderboard's own cells (:func:`liftbench.report.leaderboard.build_tables`): the
function and the numbers behind the tables' ``*`` marks, so a mark and its matrix cell never disagree. Red
where p < 0.05; grey, with the reason, where no test was run (fewer than 2 common seeds, or paired
differences with zero variance — ``det.`` when every seed gave the same value). Measured rows only: reported
figures have no seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from liftbench.report.formats import Table, metric_name
from liftbench.report.leaderboard import build_tables
from liftbench.report.paired import ALPHA, CONSTANT, DETERMINISTIC, FEW_SEEDS, Paired, paired_test

SHORT = {FEW_SEEDS: "n<2", DETERMINISTIC: "det.", CONSTANT: "var 0"}
RED, PALE, GREY, WHITE = (0.84, 0.19, 0.15), (0.99, 0.93, 0.90), (0.82, 0.82, 0.82), (1.0, 1.0, 1.0)


@dataclass
class Matrix:
    """The comparisons of one (protocol, backbone, dataset, metric): ``tests[i][j]`` is row i against row j
    (``None`` on the diagonal)."""

    protocol: str
    backbone: str
    dataset: str
    metric: str
    labels: list[str]
    tests: list[list[Paired | None]]


def matrices(table: Table) -> list[Matrix]:
    """Every (backbone, column) of ``table`` with at least two measured rows."""
    out = []
    for backbone in dict.fromkeys(r.backbone for r in table.rows):
        for dataset, metric in table.columns:
            rows = [r for r in table.rows if r.backbone == backbone and r.source != "reported" and (dataset, metric) in r.cells]
            if len(rows) < 2:
                continue
            seeds = [r.cells[(dataset, metric)].seeds for r in rows]
            tests = [[None if i == j else paired_test(a, b) for j, b in enumerate(seeds)] for i, a in enumerate(seeds)]
            out.append(Matrix(table.protocol, backbone, dataset, metric, [r.label for r in rows], tests))
    return out


def _draw(ax, matrix: Matrix) -> None:
    k = len(matrix.labels)
    colours = np.ones((k, k, 3))
    for i, row in enumerate(matrix.tests):
        for j, test in enumerate(row):
            if test is None:
                colours[i, j] = WHITE
                continue
            colours[i, j] = GREY if test.p_value is None else RED if test.significant else PALE
            text = SHORT[test.reason] if test.p_value is None else f"{test.p_value:.3f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if test.significant else "black")
    ax.imshow(colours, interpolation="nearest")
    from liftbench.report.plots import _literal

    labels = [_literal(label) for label in matrix.labels]
    ax.set_xticks(range(k), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(k), labels, fontsize=7)
    ax.set_title(_literal(f"{matrix.backbone}, {metric_name(matrix.metric)}"), fontsize=8)


def plot_pvalues(frame: pd.DataFrame, out_dir: Path, **selection) -> list[Path]:
    """Write the p-value matrices of ``frame`` under ``out_dir``; ``selection`` as for the leaderboard's tables."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from liftbench.report.plots import _literal, file_stem, save

    selection.pop("baseline", None)  # every strategy against every other: no baseline
    out = Path(out_dir)
    written: list[Path] = []
    for table in build_tables(frame, **selection):
        found = matrices(table)
        for dataset in dict.fromkeys(m.dataset for m in found):
            panels = [m for m in found if m.dataset == dataset]
            side = max(2.4, 0.45 * max(len(m.labels) for m in panels) + 1.4)
            fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels), side + 0.7), squeeze=False)
            for ax, matrix in zip(axes[0], panels, strict=True):
                _draw(ax, matrix)
            fig.suptitle(f"{_literal(dataset)} ({_literal(table.protocol)}): paired t-test p, row vs column, over common seeds", fontsize=8)
            fig.text(0.01, 0.01, f"red: p < {ALPHA}; grey: not tested (n<2: {FEW_SEEDS}; det.: {DETERMINISTIC}; "
                     f"var 0: {CONSTANT})", fontsize=5)  # fmt: skip
            fig.tight_layout(rect=(0, 0.04, 1, 0.95))
            out.mkdir(parents=True, exist_ok=True)
            written += save(fig, out / file_stem("pvalues", table.protocol, dataset))
    return written
