"""Result rows with known answers for the leaderboard and p-value tests.

Two backbones, three strategies, three seeds, two datasets and two metrics. Per seed the values are a base, a
seed jitter of mean 0 and sample std 1 point, and a strategy offset from 2d: on ``vits`` pcm equals 2d and pcg
is better on every seed; on ``vitb`` pcm is better and pcg mixed. So the means, the bold cells and which
improvements are significant are known before a table is built.
"""

from __future__ import annotations

import pandas as pd

from liftbench.run.results import rows_to_table

SEEDS = (0, 1, 2)
JITTER = {0: -0.01, 1: 0.0, 2: 0.01}  # per seed: mean 0, sample std 1 point in percent
# per backbone: strategy -> offset from 2d, per seed (pcm identical to 2d on vits; pcg always better)
OFFSETS = {
    "vits": {"2d": (0, 0, 0), "pcm": (0, 0, 0), "pcg": (0.05, 0.06, 0.04)},
    "vitb": {"2d": (0, 0, 0), "pcm": (0.10, 0.09, 0.11), "pcg": (-0.02, 0.01, -0.03)},
}
BASE = {("organ", "auc"): 0.80, ("organ", "acc"): 0.70, ("nodule", "auc"): 0.60, ("nodule", "acc"): 0.50}


def synthetic_rows(protocol="linear"):
    """One ok row per backbone, strategy, seed, dataset and metric."""
    rows = []
    for backbone, strategies in OFFSETS.items():
        for strategy, offsets in strategies.items():
            for seed, offset in zip(SEEDS, offsets, strict=True):
                for (dataset, metric), base in BASE.items():
                    rows.append(
                        dict(
                            run_key=f"{backbone}-{strategy}-{dataset}-{seed}",
                            kind="run",
                            source="measured",
                            dataset=dataset,
                            input_size=64,
                            backbone=backbone,
                            strategy=strategy,
                            protocol=protocol,
                            seed=seed,
                            split="test",
                            metric=metric,
                            value=base + JITTER[seed] + offset,
                            status="ok",
                        )
                    )
    return rows


def frame_of(rows) -> pd.DataFrame:
    """Rows as the results table the leaderboard reads."""
    return rows_to_table(rows).to_pandas()


def cell(tables, backbone, label, dataset, metric):
    """The one table's cell of a backbone's row ``label`` at (dataset, metric)."""
    (table,) = tables
    (row,) = [r for r in table.rows if r.backbone == backbone and r.label == label]
    return row.cells[(dataset, metric)]
