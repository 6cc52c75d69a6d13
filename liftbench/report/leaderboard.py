"""Leaderboards from results: the paper's Table 1/2 layout, in Markdown, LaTeX, HTML or CSV.

One table per protocol. Rows are strategies grouped by backbone (a strategy label carries its schedule or
pooling when they are not the strategy's defaults, and its weights when not pretrained); columns are the
datasets, each with its metrics, then ``avg``. Only rows with ``status == "ok"`` and ``kind == "run"`` on the
test split count.

A cell aggregates the seeds of **one configuration**, never runs that differ in anything else. Runs that
share a row label (backbone, strategy, schedule, pooling, weights, size) but differ in the weights' sha256,
the backbone mode, a protocol option (iterations, lr, threshold, dtype, ...) or a dataset option are split
into separate rows, each labelled with the values that tell them apart (``iterations=40``). The same
configuration and seed found more than once (two folders, or a study rerun under another key) counts once,
and a note says how many repeats were dropped.

Choices, each also stated in a note under every table:

- a cell is the mean ± sample standard deviation (ddof=1) over seeds, in percent, one decimal; the std is
  left out when there is one value (reported figures always);
- ``avg`` is the mean over the datasets shown of the per-dataset means, and only when a row has every dataset
  of that metric (its std is over the per-seed averages of the seeds that have every dataset);
- **bold** marks the best value of a column within each backbone group, compared at the displayed precision
  (ties all bold), measured and reported rows alike, and only where the group has two values or more;
- reported rows (``source == "reported"``) read "<strategy> (reported)", and a note cites where they come
  from. Their ``avg`` is the average the paper printed, not recomputed; when it differs from the mean of the
  printed per-dataset values by more than rounding explains (each value and the average rounded to 0.1: at most
  0.05 + 0.05) it is marked † and the difference is listed (:func:`audit_reported_averages` returns them);
- with ``baseline="2d"``, a measured cell differing from the baseline strategy's on the same backbone,
  dataset, metric and protocol by a paired t-test over common seeds (p < 0.05, at least 2 seeds, paired differences
  that vary: :mod:`liftbench.report.paired`, the same test the p-value matrices use) gets a ``*``.

Committed leaderboards (:func:`check`, :func:`write_all`): ``<results_root>/leaderboard.md`` renders every
result under the root, and ``<results_root>/<study>/leaderboard.md`` each study folder holding result files,
in the layout of the study recorded there (:func:`tables_for`; everything, all metrics, without one), with no
timestamps, so a re-render is byte-identical when nothing changed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from liftbench.errors import UsageError, writing
from liftbench.lifting.planes import DEFAULT_SCHEDULE as PLANE_CYCLE
from liftbench.lifting.planes import schedule_text
from liftbench.report.formats import AVG_FLAG, FORMATS, SIG_MARK, Cell, Row, Table, metric_name
from liftbench.report.paired import ALPHA, FEW_SEEDS, paired_test
from liftbench.run.results import SIDE_DIRS, read_results, result_files, write_text_atomic

DEFAULT_SCHEDULE = schedule_text(PLANE_CYCLE)
METRIC_ORDER = ("auc", "acc", "dice", "featdice")  # metrics are not plugins: the paper's column order
AVG_TOLERANCE = 0.1 + 1e-9  # percent points: each printed value and the printed average rounded to 0.1
LEADERBOARD_FILE = "leaderboard.md"


def _registry():
    """The installed plugins' registry: tables list things in registration order, and a strategy's
    default pooling comes from its entry. Building it imports plugin modules only (no torch)."""
    from liftbench.plugin.manager import default_registry

    return default_registry()


def rank(kind: str, name: str) -> tuple[int, str]:
    """Sort key of ``name`` among ``kind`` (strategy, backbone, dataset, protocol, metric): registered
    names in registration order, then anything else (a reported row's ``vivit``) alphabetically."""
    if kind == "metric":
        return (METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER), name)
    return (_registry().order(kind, name), name)


def _ordered(kind: str, names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=lambda n: rank(kind, n))


def _default_pooling(strategy: str) -> str:
    registry = _registry()
    return registry.get("strategy", strategy).pooling if registry.has("strategy", strategy) else ""


def _paper(citation) -> str:
    return re.sub(r"\s*\(Tables? [^)]*\)\s*$", "", str(citation or ""))


def _label(row, several_sizes: bool) -> str:
    parts = [row.strategy]
    if row.schedule and row.schedule != DEFAULT_SCHEDULE:
        parts.append(f"[{row.schedule}]")
    if row.pooling and row.pooling != _default_pooling(row.strategy):
        parts.append(f"pool={row.pooling}")
    if row.weights and row.weights != "pretrained":
        parts.append(f"weights={Path(str(row.weights)).name}")
    if several_sizes and not pd.isna(row.input_size):
        parts.append(f"@{int(row.input_size)}")
    return " ".join(parts) + (" (reported)" if row.source == "reported" else "")


def _config_items(row) -> dict[str, str]:
    """What defines a run beyond its row label: weights identity, the data's fingerprint, backbone mode, protocol
    and dataset options, as ``name -> printed value`` (dataset options prefixed ``data.``)."""
    items = {"sha256": str(row.weights_sha256 or "")[:8], "mode": str(row.backbone_mode or "")}
    fingerprint = getattr(row, "data_fingerprint", None)
    if isinstance(fingerprint, str) and fingerprint:  # runs on other data are another configuration
        items["data"] = fingerprint[:8]
    for prefix, text in (("", row.options), ("data.", row.dataset_options)):
        try:
            values = json.loads(text) if text else {}
        except ValueError:
            values = {"options": text}
        for key, value in (values.items() if isinstance(values, dict) else [("options", values)]):
            items[prefix + key] = value if isinstance(value, str) else json.dumps(value)
    try:  # the dtype a run actually used (``--dtype auto`` resolves per device and backbone)
        used = json.loads(row.notes).get("dtype") if row.notes else None
    except (ValueError, AttributeError):
        used = None
    if used:
        items["dtype"] = str(used)
    return items


def _split_configurations(f: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Give runs of different configurations under one label their own labels, and drop repeats of a
    (configuration, seed). A name is added to a label only where it varies among the runs of one
    dataset column, so options that differ between datasets only (their own sizes) split nothing.
    Returns the frame and the number of repeated runs dropped."""
    if f.empty:
        return f, 0
    items = [_config_items(r) for r in f.itertuples()]
    frame = f.assign(_items=items, _config=[json.dumps(i, sort_keys=True) for i in items])
    telling: dict[tuple, set[str]] = {}
    for (backbone, label, source, _), g in frame.groupby(["backbone", "label", "source", "dataset"]):
        seen: dict[str, set[str]] = {}
        for cfg in g["_items"]:
            for name in set(seen) | set(cfg):
                seen.setdefault(name, set()).add(cfg.get(name, ""))
        telling.setdefault((backbone, label, source), set()).update(n for n, v in seen.items() if len(v) > 1)
    labels = []
    for row, cfg in zip(frame.itertuples(), items, strict=True):
        names = sorted(telling.get((row.backbone, row.label, row.source), ()))
        extra = " ".join(f"{n}={cfg.get(n, '-')}" for n in names)
        labels.append(f"{row.label} {extra}" if extra else row.label)
    frame = frame.assign(label=labels)
    keys = ["backbone", "label", "source", "dataset", "metric", "split", "_config", "seed"]
    repeated = frame.duplicated(subset=keys, keep="first") & frame["seed"].notna()
    runs_dropped = frame.loc[repeated, "run_key"].nunique() if repeated.any() else 0
    return frame[~repeated].drop(columns=["_items", "_config"]), int(runs_dropped)


def _as_list(value) -> list[str] | None:
    return None if value is None else [value] if isinstance(value, str) else list(value)


def _select(frame, protocol, metrics, backbones, reported, split) -> pd.DataFrame:
    f = frame[(frame["status"] == "ok") & (frame["kind"] == "run")].copy()
    f = f[f["split"].isna() | (f["split"] == split)]
    f["source"] = f["source"].fillna("measured")
    for col in ("schedule", "pooling", "weights", "citation", "weights_sha256", "backbone_mode", "options", "dataset_options", "notes"):
        f[col] = f[col].fillna("")
    if not reported:
        f = f[f["source"] != "reported"]
    for col, wanted in (("protocol", protocol), ("metric", metrics), ("backbone", backbones)):
        if _as_list(wanted) is not None:
            f = f[f[col].isin(_as_list(wanted))]
    return f


def _available(frame: pd.DataFrame) -> str:
    ok = frame[(frame["status"] == "ok") & (frame["kind"] == "run")]
    if ok.empty:
        return "the results hold no successful runs"
    names = {"protocol": "protocols", "backbone": "backbones", "strategy": "strategies", "dataset": "datasets",
             "metric": "metrics"}  # fmt: skip
    parts = [f"{plural}: {', '.join(sorted(map(str, ok[col].dropna().unique())))}" for col, plural in names.items()]
    return "available " + "; ".join(parts)


def _stats(values: Sequence[float]) -> tuple[float, float | None]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _cell(per_seed: dict, mean: float | None = None) -> Cell:
    values = list(per_seed.values())
    m, std = _stats(values)
    return Cell(mean=m if mean is None else mean, std=std, n=len(values), seeds={s: v for s, v in per_seed.items() if s != -1.0})


def _several_sizes(f: pd.DataFrame) -> bool:
    """Whether a size joins the row label: only when one dataset was run at several sizes (LIDC at 160 beside
    MMWHS at 64 is one configuration: each dataset's own size)."""
    return bool((f.dropna(subset=["input_size"]).groupby("dataset")["input_size"].nunique() > 1).any())


def _build(protocol: str, f: pd.DataFrame, datasets, baseline, sort) -> Table | None:
    several_sizes = _several_sizes(f)
    f = f.assign(label=[_label(r, several_sizes) for r in f.itertuples()], paper=f["citation"].map(_paper))
    f, repeats = _split_configurations(f)
    printed = f[(f["dataset"] == "avg") & (f["source"] == "reported")]
    f = f[f["dataset"] != "avg"]
    own = f.groupby(["backbone", "label", "source", "paper", "metric"])["dataset"].agg(set).to_dict()
    if _as_list(datasets) is not None:
        f = f[f["dataset"].isin(_as_list(datasets))]
    if f.empty:
        return None
    # per (row, dataset, metric): seed -> value in percent (seed NaN kept as its own key)
    f = f.assign(seed=f["seed"].astype("float64").fillna(-1.0), pct=f["value"] * 100.0)
    keys = ["backbone", "label", "source", "paper", "strategy"]
    grouped = f.groupby(keys + ["dataset", "metric", "seed"], dropna=False)["pct"].mean()
    series: dict[tuple, dict[tuple, dict[float, float]]] = {}
    for (*rk, dataset, metric, seed), value in grouped.items():
        series.setdefault(tuple(rk), {}).setdefault((dataset, metric), {})[seed] = value
    metrics = {d: _ordered("metric", g["metric"]) for d, g in f.groupby("dataset")}
    dsets = _ordered("dataset", metrics)
    columns = [(d, m) for d in dsets for m in metrics[d]]
    avg_metrics = [m for m in _ordered("metric", [m for _, m in columns]) if sum(m in metrics[d] for d in dsets) > 1]
    columns += [("avg", m) for m in avg_metrics]
    printed_avg = {(r.backbone, r.label, r.source, r.paper, r.metric): r.value * 100 for r in printed.itertuples()}

    rows, flags = [], []
    need_by_metric = {m: [d for d, mm in columns if mm == m and d != "avg"] for m in avg_metrics}
    for rk, cells_in in series.items():
        row = Row(backbone=rk[0], strategy=rk[4], label=rk[1], source=rk[2])
        row.cells = {col: _cell(v) for col, v in cells_in.items()}
        for m in avg_metrics:
            need = need_by_metric[m]
            if not all((d, m) in cells_in for d in need):
                continue
            means = [row.cells[(d, m)].mean for d in need]
            mean = sum(means) / len(means)
            pkey = (*rk[:4], m)
            per_seed: dict[float, float] = {}
            if row.source == "reported" and pkey in printed_avg and own.get(pkey) == set(need):
                cell = Cell(mean=printed_avg[pkey], printed=True, flagged=abs(printed_avg[pkey] - mean) > AVG_TOLERANCE)
                if cell.flagged:
                    flags.append(f"{AVG_FLAG} {row.backbone} / {row.label}, avg {metric_name(m)}: printed avg "
                                 f"{cell.mean:.1f} differs from mean of printed values {mean:.2f}")  # fmt: skip
            else:
                seeds = set.intersection(*(set(cells_in[(d, m)]) for d in need)) - {-1.0}
                per_seed = {s: sum(cells_in[(d, m)][s] for d in need) / len(need) for s in seeds}
                cell = _cell(per_seed, mean) if len(per_seed) > 1 else Cell(mean=mean, n=len(per_seed) or 1)
                cell.n = len(per_seed) or 1
            row.cells[("avg", m)] = cell
            cells_in[("avg", m)] = per_seed
        rows.append((row, cells_in))

    order = {k: _ordered(k, {getattr(r, k) for r, _ in rows}) for k in ("backbone", "strategy")}
    rows.sort(key=lambda rc: (order["backbone"].index(rc[0].backbone), order["strategy"].index(rc[0].strategy),
                              rc[0].source == "reported", rc[0].label))  # fmt: skip
    if sort:
        col = _sort_column(sort, columns)
        rows.sort(key=lambda rc: (order["backbone"].index(rc[0].backbone),
                                  -rc[0].cells[col].mean if col in rc[0].cells else math.inf))  # fmt: skip
    _mark_best(rows, columns)
    notes = _notes(protocol, f, rows, avg_metrics, baseline)
    if repeats:
        notes.append(f"{repeats} run(s) repeating a configuration and seed already shown (found in several files) "
                     "counted once.")  # fmt: skip
    if baseline:
        notes += _mark_significant(rows, columns, baseline)
    return Table(protocol=protocol, columns=columns, rows=[r for r, _ in rows], notes=notes + flags)


def _sort_column(sort: str, columns: list[tuple[str, str]]) -> tuple[str, str]:
    dataset, _, metric = sort.partition(":")
    for col in columns:
        if col[0] == dataset and (not metric or col[1] == metric):
            return col
    raise UsageError(f"cannot sort by {sort!r}; columns: {', '.join(f'{d}:{m}' for d, m in columns)}")


def _mark_best(rows, columns) -> None:
    for backbone in {r.backbone for r, _ in rows}:
        group = [r for r, _ in rows if r.backbone == backbone]
        for col in columns:
            cells = [r.cells[col] for r in group if col in r.cells]
            if len(cells) < 2:
                continue
            best = max(round(c.mean, 1) for c in cells)
            for c in cells:
                c.bold = round(c.mean, 1) == best


def _mark_significant(rows, columns, baseline: str) -> list[str]:
    missing, untested = [], {}
    for backbone in _ordered("backbone", {r.backbone for r, _ in rows}):
        measured = [(r, s) for r, s in rows if r.backbone == backbone and r.source != "reported"]
        bases = sorted((rs for rs in measured if rs[0].strategy == baseline), key=lambda rs: rs[0].label != baseline)
        if not bases:
            missing.append(backbone)
            continue
        base = bases[0][1]
        for row, per in measured:
            if row is bases[0][0]:
                continue
            for col in columns:
                if col not in row.cells or col not in base:
                    continue
                test = paired_test(per.get(col, {}), base[col])
                if test.p_value is None:
                    if test.reason != FEW_SEEDS:
                        untested[test.reason] = untested.get(test.reason, 0) + 1
                    continue
                row.cells[col].p_value = test.p_value
                row.cells[col].significant = test.significant
    note = [f"{SIG_MARK} differs from {baseline!r} on the same backbone, dataset and metric: paired t-test over "
            f"common seeds, p < {ALPHA}, at least 2 seeds (measured rows only)."]  # fmt: skip
    if untested:
        note.append("No mark where the test is undefined: " + "; ".join(f"{reason} ({n} cell(s))" for reason, n in untested.items()) + ".")
    if missing:
        note.append(f"No measured {baseline!r} baseline for: {', '.join(missing)}.")
    return note


def _notes(protocol, f, rows, avg_metrics, baseline) -> list[str]:
    notes = [f"Protocol {protocol}. Cells: mean ± sample std over seeds, in percent (std omitted for one value).",
             "Bold: best value of each column within a backbone group, at the displayed precision "
             "(ties all bold; measured and reported rows alike; only where the group has 2 values or more)."]  # fmt: skip
    if avg_metrics:
        notes.append("avg: mean over the datasets shown of the per-dataset means, only for rows with every "
                     "dataset; a reported row shows the average printed in the paper when all its datasets are "
                     "shown.")  # fmt: skip
    reported = f[f["source"] == "reported"]
    for paper, g in reported.groupby("paper"):
        tables = sorted({m.group(1) for c in g["citation"] if (m := re.search(r"\((Tables? [^)]*)\)", c))})
        notes.append(f"(reported): figures quoted from {paper}" + (f" ({', '.join(tables)})" if tables else "")
                     + ", not measured by liftbench.")  # fmt: skip
    return notes


def side_by_side(tables: list[Table]) -> Table:
    """One table holding ``tables`` side by side, each protocol's columns a group (``protocol/dataset``):
    the layout of the paper's Table 3 (FeatDice | linear | fine-tune, each over LIDC, MMWHS-CT, MMWHS-MRI
    and the average). Cells, their bold and significance marks and the notes are the per-protocol tables'; the
    table's ``parts`` maps each column group back to its (protocol, dataset), for the runs behind a cell."""
    rows: dict[tuple[str, str, str], Row] = {}
    columns: list[tuple[str, str]] = []
    notes: list[str] = []
    parts: dict[str, tuple[str, str]] = {}
    for table in tables:
        columns += [(f"{table.protocol}/{d}", m) for d, m in table.columns]
        parts.update({f"{table.protocol}/{d}": table.source(d) for d, _ in table.groups()})
        for row in table.rows:
            merged = rows.setdefault((row.backbone, row.label, row.source), Row(row.backbone, row.strategy, row.label, row.source))
            merged.cells.update({(f"{table.protocol}/{d}", m): cell for (d, m), cell in row.cells.items()})
        for note in table.notes:  # said once when every protocol says it (their first note names the protocol)
            note = note.removeprefix(f"Protocol {table.protocol}. ")
            if note not in notes:
                notes.append(note)
    order = {k: _ordered(k, {r.backbone if k == "backbone" else r.strategy for r in rows.values()}) for k in ("backbone", "strategy")}
    ordered = sorted(rows.values(), key=lambda r: (order["backbone"].index(r.backbone), order["strategy"].index(r.strategy),
                                                    r.source == "reported", r.label))  # fmt: skip
    return Table(protocol=" | ".join(t.protocol for t in tables), columns=columns, rows=ordered, notes=notes, parts=parts)


def build_tables(frame: pd.DataFrame, *, protocol=None, metrics=("auc", "acc"), backbones=None, datasets=None,
                 reported: bool = True, baseline: str | None = None, sort: str | None = None,
                 split: str = "test", combine: bool = False) -> list[Table]:  # fmt: skip
    """The leaderboard as :class:`Table` objects (one a protocol, or one in all with ``combine``: the
    protocols side by side, :func:`side_by_side`); see :func:`render`."""
    f = _select(frame, protocol, metrics, backbones, reported, split)
    if baseline and baseline not in set(f.loc[f["source"] != "reported", "strategy"]):
        raise UsageError(f"baseline strategy {baseline!r} has no measured rows in this selection; {_available(frame)}")
    tables = []
    for name in _ordered("protocol", f["protocol"].dropna()):
        table = _build(name, f[f["protocol"] == name], datasets, baseline, sort)
        if table is not None:
            tables.append(table)
    if not tables:
        asked = {"protocol": protocol, "metrics": metrics, "backbones": backbones, "datasets": datasets}
        shown = ", ".join(f"{k}={v!r}" for k, v in asked.items() if v is not None)
        raise UsageError(f"no results to show for {shown or 'this folder'}; {_available(frame)}")
    return [side_by_side(tables)] if combine and len(tables) > 1 else tables


def layout_selection(layout) -> dict:
    """What a study's layout (:class:`liftbench.study.model.Layout`) selects, as :func:`build_tables` (and the plots)
    take it; ``None`` — a folder no study made — selects everything the folder holds, its reported rows too."""
    if layout is None:
        return {"metrics": None}
    return {"protocol": list(layout.protocols) if layout.protocols else None,
            "metrics": list(layout.metrics) if layout.metrics else None, "reported": layout.reported}  # fmt: skip


def with_reported(frame: pd.DataFrame, layout) -> pd.DataFrame:
    """``frame`` with the paper's reported rows added when the layout asks for them and it holds none."""
    if layout is None or not layout.reported or (frame["source"] == "reported").any():
        return frame
    from liftbench.report.reported import reported_table

    return pd.concat([frame, reported_table().to_pandas()], ignore_index=True)


def tables_for(frame: pd.DataFrame, layout=None) -> list[Table]:
    """The tables of ``frame`` in a study's layout — protocols, metrics, baseline, reported rows, protocols side
    by side — the one way the board after a run, the site and the committed tables read a study. A baseline
    with no measured rows is dropped (the tables without the test) rather than failing; anything else that
    selects nothing raises :class:`UsageError`. Reported rows are those ``frame`` holds (see :func:`with_reported`)."""
    selection = layout_selection(layout)
    combine = bool(layout and layout.combine)
    if layout is not None and layout.baseline:
        try:
            return build_tables(frame, **selection, baseline=layout.baseline, combine=combine)
        except UsageError:
            pass  # no measured baseline among these runs: the same tables without the test
    return build_tables(frame, **selection, combine=combine)


def render(frame: pd.DataFrame, *, fmt: str = "md", protocol=None, metrics=("auc", "acc"), backbones=None,
           datasets=None, reported: bool = True, baseline: str | None = None, sort: str | None = None,
           split: str = "test", combine: bool = False) -> str:  # fmt: skip
    """The leaderboard of ``frame`` (a results DataFrame) as ``fmt``: ``md``, ``latex``, ``html`` or ``csv``.

    ``protocol``, ``metrics`` (``None``: all present), ``backbones`` and ``datasets`` select (a name or a
    list); ``reported=False`` hides reported rows; ``baseline`` names the strategy the significance test
    compares against; ``sort`` (``"avg"``, ``"organ"``, ``"organ:acc"``) orders rows within each backbone
    group by that column, best first. Raises :class:`UsageError` when nothing matches, naming what exists.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown leaderboard format {fmt!r}; valid: {', '.join(FORMATS)}")
    tables = build_tables(frame, protocol=protocol, metrics=metrics, backbones=backbones, datasets=datasets,
                          reported=reported, baseline=baseline, sort=sort, split=split, combine=combine)  # fmt: skip
    return FORMATS[fmt](tables)


def audit_reported_averages(frame: pd.DataFrame, tolerance: float = AVG_TOLERANCE) -> list[dict]:
    """Printed averages (reported ``dataset == "avg"`` rows) that the printed per-dataset values do not explain.

    One dict per flagged cell: citation, table, protocol, backbone, strategy, schedule, pooling, metric,
    printed and mean (percent) and the number of datasets averaged.
    """
    f = frame[(frame["status"] == "ok") & (frame["source"] == "reported")].copy()
    keys = ["citation", "protocol", "backbone", "strategy", "schedule", "pooling", "metric"]
    f[keys] = f[keys].fillna("")
    flagged = []
    for key, g in f.groupby(keys, sort=True):
        avg, values = g[g["dataset"] == "avg"]["value"], g[g["dataset"] != "avg"]["value"]
        if avg.empty or values.empty:
            continue
        printed, mean = round(float(avg.iloc[0]) * 100, 6), round(float(values.mean()) * 100, 6)
        if abs(printed - mean) > tolerance:
            info = dict(zip(keys, key, strict=True))
            table = re.search(r"\(Table (\S+)\)", info["citation"])
            info["table"] = table.group(1) if table else None
            flagged.append({**info, "printed": printed, "mean": mean, "datasets": len(values)})
    return flagged


# Committed leaderboards --------------------------------------------------------------------------


def _holds_runs(folder: Path) -> bool:
    """Whether a folder has evaluation runs (a benchmark-only folder has its own table, bench.md)."""
    for path in result_files(folder):
        try:
            if "run" in pq.read_table(path, columns=["kind"]).column("kind").to_pylist():
                return True
        except Exception:  # unreadable: read_results reports it when the folder is rendered
            continue
    return False


def targets(results_root: Path) -> dict[Path, Path]:
    """Each committed leaderboard file and the folder it is rendered from."""
    root = Path(results_root)
    if not root.is_dir() or not result_files(root):
        return {}
    out = {root / LEADERBOARD_FILE: root}
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if child.name not in SIDE_DIRS and not child.name.startswith(".") and _holds_runs(child):
            out[child / LEADERBOARD_FILE] = child
    return out


def folder_layout(folder: Path):
    """The layout of the study recorded in ``folder`` (its ``study.toml``), or ``None`` without a readable one."""
    from liftbench.study.model import folder_study

    study = folder_study(folder)[0]
    return study.leaderboard if study is not None else None


def render_folder(folder: Path, title: str) -> str:
    """The text of one committed leaderboard, Markdown: the results under ``folder`` in the layout of the study
    that made them (:func:`tables_for`), or all of them, every metric, where no study did. Reported rows are
    the folder's own, never added: a committed table shows what its folder holds."""
    from liftbench.report.citation import citation
    from liftbench.report.formats import md_escape
    from liftbench.study.plan import scheduled_strategies

    head = (f"# Leaderboard: {md_escape(title)}\n\n{citation(folder, scheduled_strategies(_registry()))}<!-- Generated by liftbench.report.leaderboard.write_all from the "
            "result files under this folder. Do not edit by hand. -->\n\n")  # fmt: skip
    try:
        return head + FORMATS["md"](tables_for(read_results(folder).frame, folder_layout(folder)))
    except UsageError as exc:
        return head + f"No results to show: {exc}\n"


def _expected(results_root: Path) -> dict[Path, str]:
    root = Path(results_root)
    return {path: render_folder(folder, "all results" if folder == root else folder.name)
            for path, folder in targets(root).items()}  # fmt: skip


def check(results_root: Path) -> list[str]:
    """Paths of committed leaderboards that are missing or differ from a fresh render (empty: all current)."""
    stale = []
    for path, text in _expected(results_root).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path))
    return stale


def write_all(results_root: Path) -> list[Path]:
    """(Re)write every committed leaderboard under ``results_root``; returns the files written."""
    written = []
    for path, text in _expected(results_root).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            with writing(path, "--write"):
                write_text_atomic(path, text)
            written.append(path)
    return written
