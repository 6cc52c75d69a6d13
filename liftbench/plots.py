"""Bar charts of a leaderboard: one figure per protocol and dataset, PNG and SVG.

Each figure has one panel per metric; bars are the table's rows (strategies) grouped by backbone, with the
standard deviation over seeds as error bars (none for a single value). Reported rows are hatched. The numbers
are exactly the leaderboard's (:func:`liftbench.leaderboard.build_tables`), so a plot never disagrees with the
table beside it. Files are named ``<protocol>_<dataset>.png|svg``; the SVG carries no date, so re-plotting
unchanged results writes identical SVG files.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from liftbench.leaderboard import build_tables
from liftbench.leaderboard_format import metric_name


def save(fig, stem: Path, dpi: int = 150) -> list[Path]:
    """Write ``fig`` as PNG and as a dateless SVG (re-plotting unchanged results gives identical SVGs)."""
    import matplotlib.pyplot as plt

    fig.savefig(stem.with_suffix(".png"), dpi=dpi)
    plt.rcParams["svg.hashsalt"] = "liftbench"
    fig.savefig(stem.with_suffix(".svg"), metadata={"Date": None})
    plt.close(fig)
    return [stem.with_suffix(".png"), stem.with_suffix(".svg")]


def plot(frame: pd.DataFrame, out_dir: Path, **selection) -> list[Path]:
    """Write the bar charts for ``frame`` under ``out_dir``; ``selection`` as for :func:`render`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table in build_tables(frame, **selection):
        for dataset, metrics in table.groups():
            rows = [r for r in table.rows if any((dataset, m) in r.cells for m in metrics)]
            if not rows:
                continue
            fig, axes = plt.subplots(1, len(metrics), figsize=(max(4.0, 0.5 * len(rows) + 2) * len(metrics), 3.6))
            axes = [axes] if len(metrics) == 1 else list(axes)
            x, ticks, last = 0.0, [], None
            positions = []
            for row in rows:
                if last is not None and row.backbone != last:
                    x += 0.6  # space between backbone groups
                positions.append(x)
                ticks.append(f"{row.backbone}\n{row.label.replace(' (reported)', '*')}")
                last, x = row.backbone, x + 1.0
            for ax, metric in zip(axes, metrics, strict=True):
                for pos, row in zip(positions, rows, strict=True):
                    cell = row.cells.get((dataset, metric))
                    if cell is None:
                        continue
                    ax.bar(pos, cell.mean, yerr=cell.std, capsize=3, color=f"C{rows.index(row) % 10}",
                           hatch="//" if row.source == "reported" else None, edgecolor="black", linewidth=0.5)  # fmt: skip
                values = [row.cells[(dataset, metric)].mean for row in rows if (dataset, metric) in row.cells]
                low = max(0.0, min(values) - 10.0)
                top = max(values) + 5.0
                ax.set_ylim(low, min(top, 100.0) if max(values) <= 99.0 else top)
                ax.set_xticks(positions, ticks, rotation=90, fontsize=7)
                ax.set_ylabel(f"{metric_name(metric)} (%)")
                ax.set_title(f"{dataset}, {metric_name(metric)} ({table.protocol})", fontsize=9)
            fig.text(0.01, 0.01, "* reported (hatched); error bars: std over seeds", fontsize=6)
            fig.tight_layout()
            written += save(fig, out / f"{table.protocol}_{dataset}")
    return written


def plot_cost(frame: pd.DataFrame, out_dir: Path, metric: str = "auc") -> list[Path]:
    """Accuracy against cost: test ``metric`` (mean over seeds) against seconds per volume of the lifted
    forward (the runs' measured volumes/s), one point per (backbone, strategy) and dataset. The cost axis is
    logarithmic, so flatten-3D's growth with volume size stands apart from slice-2D and PlaneCycle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = frame[(frame["status"] == "ok") & (frame["source"] != "reported") & (frame["split"] == "test") & (frame["metric"] == metric)]
    rows = rows[rows["volumes_per_second"].fillna(0) > 0]
    written: list[Path] = []
    if rows.empty:
        return written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for (protocol, dataset), group in rows.groupby(["protocol", "dataset"], sort=True):
        points = group.groupby(["backbone", "strategy"], sort=True).agg(value=("value", "mean"), vps=("volumes_per_second", "median"))
        fig, ax = plt.subplots(figsize=(5.0, 3.6))
        for i, ((backbone, strategy), point) in enumerate(points.iterrows()):
            ax.scatter(1.0 / point["vps"], 100 * point["value"], color=f"C{i % 10}", label=f"{backbone} {strategy}")
        ax.set_xscale("log")
        ax.set_xlabel("seconds per volume (lifted forward)")
        ax.set_ylabel(f"{metric_name(metric)} (%)")
        ax.set_title(f"{dataset}: {metric_name(metric)} against cost ({protocol})", fontsize=9)
        ax.legend(fontsize=6, loc="best")
        fig.tight_layout()
        written += save(fig, out / f"cost_{protocol}_{dataset}_{metric}")
    return written
