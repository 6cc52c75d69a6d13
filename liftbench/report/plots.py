"""Bar charts of a leaderboard: one figure per protocol and dataset, PNG and SVG.

Each figure has one panel per metric; bars are the table's rows (strategies) grouped by backbone, with the
standard deviation over seeds as error bars (none for a single value). Reported rows are hatched. The numbers
are exactly the leaderboard's (:func:`liftbench.report.leaderboard.build_tables`), so a plot never disagrees with the
table beside it. Files are named ``<protocol>_<dataset>.png|svg`` (names made safe for a file name: see
:func:`file_stem`); the SVG carries no date, so re-plotting unchanged results writes identical SVG files.
Names are drawn as typed: a ``$`` in one is a dollar sign, not the start of mathtext.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd

from liftbench.report.formats import metric_name
from liftbench.report.leaderboard import build_tables

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def file_stem(*parts: str) -> str:
    """``parts`` joined by ``_`` as a file name that stays in its folder on every system: a character other
    than letters, digits and ``._+-`` (``/``, ``\\``, ``:``, a space...) becomes ``-``, and a name that had to
    change gets a short hash of what it was, so ``a/b`` and ``a-b`` never write the same file. Plain names
    (``linear_organmnist3d``) are kept exactly."""
    name = "_".join(str(p) for p in parts)
    safe = _UNSAFE.sub("-", name)
    if safe != name or safe.strip(".") == "":
        safe = f"{safe}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"
    return safe


def _literal(text: str) -> str:
    """``text`` for a matplotlib label: ``$`` escaped, so a name is never parsed as mathtext."""
    return str(text).replace("$", r"\$")


def save(fig, stem: Path, dpi: int = 150) -> list[Path]:
    """Write ``fig`` as PNG and as a dateless SVG (re-plotting unchanged results gives identical SVGs)."""
    import matplotlib.pyplot as plt

    png, svg = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")  # a '.' in a name stays
    fig.savefig(png, dpi=dpi)
    plt.rcParams["svg.hashsalt"] = "liftbench"
    fig.savefig(svg, metadata={"Date": None})
    plt.close(fig)
    return [png, svg]


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
                ticks.append(_literal(f"{row.backbone}\n{row.label.replace(' (reported)', '*')}"))
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
                ax.set_ylabel(_literal(f"{metric_name(metric)} (%)"))
                ax.set_title(_literal(f"{dataset}, {metric_name(metric)} ({table.protocol})"), fontsize=9)
            fig.text(0.01, 0.01, "* reported (hatched); error bars: std over seeds", fontsize=6)
            fig.tight_layout()
            written += save(fig, out / file_stem(table.protocol, dataset))
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
            ax.scatter(1.0 / point["vps"], 100 * point["value"], color=f"C{i % 10}", label=_literal(f"{backbone} {strategy}"))
        ax.set_xscale("log")
        ax.set_xlabel("seconds per volume (lifted forward)")
        ax.set_ylabel(_literal(f"{metric_name(metric)} (%)"))
        ax.set_title(_literal(f"{dataset}: {metric_name(metric)} against cost ({protocol})"), fontsize=9)
        ax.legend(fontsize=6, loc="best")
        fig.tight_layout()
        written += save(fig, out / file_stem("cost", protocol, dataset, metric))
    return written
