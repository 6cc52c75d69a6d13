"""The runs behind each leaderboard cell, for the site's provenance panels.

A table cell aggregates the seeds of one configuration (:mod:`liftbench.report.leaderboard`). To show *which* runs,
the rows are selected and labelled exactly as the table is built — the same selection, row label and
configuration split, reused from the leaderboard module rather than re-implemented — and grouped by
(protocol, backbone, row label, source, dataset). A cell's runs are then one dictionary lookup away.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from liftbench.report import leaderboard as lb

# what a provenance panel shows per run, in this order
RUN_FIELDS = ("seed", "run_key", "weights", "weights_sha256", "input_size", "schedule", "backbone_mode", "options",
              "dataset_options", "device", "liftbench_version", "git_commit", "git_dirty", "wall_seconds", "created_at")  # fmt: skip


@dataclass(frozen=True)
class RunInfo:
    """One run behind a cell: its metric values and what defines and produced it."""

    dataset: str
    values: dict[str, float]  # metric -> value in percent
    fields: dict[str, str]  # RUN_FIELDS -> printed value


def _seed(value) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))


def _printed(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 1 else f"{value:.3g}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, str) and value.startswith("{"):
        try:
            return ", ".join(f"{k}={v}" for k, v in json.loads(value).items()) or "(defaults)"
        except ValueError:
            return value
    return str(value)


def runs_by_cell(frame: pd.DataFrame, protocols: Sequence[str], *, metrics=None, backbones=None, reported: bool = True,
                 split: str = "test") -> dict[tuple, list[RunInfo]]:  # fmt: skip
    """(protocol, backbone, label, source, dataset) -> the runs behind that cell, sorted by seed."""
    selected = lb._select(frame, None, metrics, backbones, reported, split)
    out: dict[tuple, list[RunInfo]] = {}
    for protocol in protocols:
        f = selected[selected["protocol"] == protocol]
        if f.empty:
            continue
        several_sizes = lb._several_sizes(f)  # the row labels exactly as the table makes them
        f = f.assign(label=[lb._label(r, several_sizes) for r in f.itertuples()])
        f, _ = lb._split_configurations(f)
        f = f[f["dataset"] != "avg"]
        keys = ["backbone", "label", "source", "dataset"]
        for key, group in f.groupby(keys, sort=False):
            runs = []
            for _, rows in group.groupby(group["run_key"].fillna(""), sort=False):
                first = rows.iloc[0]
                values = {str(r.metric): float(r.value) * 100.0 for r in rows.itertuples()}
                fields = {name: _printed(first.get(name)) for name in RUN_FIELDS}
                fields["seed"] = _seed(first.get("seed"))
                if first["source"] == "reported":
                    fields = {"citation": str(first.get("citation") or "")}
                runs.append(RunInfo(dataset=str(key[3]), values=values, fields=fields))
            runs.sort(key=lambda r: (int(r.fields.get("seed") or -1), r.fields.get("run_key", "")))
            out[(protocol, *key)] = runs
    return out
