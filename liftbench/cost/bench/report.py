"""Rendering bench results: a Markdown table and log-log plots of time and memory against volume size.

The table has one row per backbone and strategy and, per volume size, the five numbers that decide
whether a lifting is affordable: latency, volumes per second, GFLOP per volume, the achieved fraction
of the matmul peak (is the time spent computing, or waiting?) and peak memory. Results measured with
different batch sizes, dtypes, modes or devices are never mixed in one table or plot: each such
group gets its own section and files. SVGs carry no date, so unchanged results re-plot identically.

Segmentation steps (``--seg``) come after the backbone-only sections, under their own heading, with two more
columns — the decoder's parameters and the memory held between steps (weights, gradients, AdamW moments) —
and the authors' reported GPU memory next to them, since theirs is the only published figure to compare with.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from liftbench.report.leaderboard import rank
from liftbench.report.plots import save
from liftbench.run.results import write_text_atomic

MEASURES = (
    ("latency_ms_median", "ms", "{:.1f}"),
    ("volumes_per_second", "vol/s", "{:.2f}"),
    ("gflops_per_volume", "GFLOP/vol", "{:.1f}"),
    ("achieved_fraction_of_matmul_peak", "% peak", "{:.0%}"),
    ("peak_memory_mb", "MB", "{:.0f}"),
)
SEG_PROTOCOLS = {
    "bench-seg-frozen": "frozen backbone (seg-linear)",
    "bench-seg-finetune": "fine-tuned backbone (seg-finetune)",
}
# The authors' GPU memory per segmentation training run, GB: (linear, fine-tune); one H200, batch 12 on LIDC
# (160² in-plane) for linear, batch 8 on MMWHS (64³).
AUTHORS_SEG_MEMORY_GB = {"ViT-S": (17, 32), "ViT-B": (18, 44), "ViT-L": (32, 87)}
SEG_NOTE = (
    "One training step as `seg-linear` (frozen) / `seg-finetune` run it: dense patch maps of the last block → "
    "`ProgressiveUpHead` (hidden 512, logits at the input's D×H×W) → `seg_loss` → AdamW (fine-tune: backbone lr 0.1×, "
    "grad clip 0.8, dropout 0.2), on random volumes and labels. MB is the step's peak above what is held between "
    "steps (CPU: resident-set growth; GPU: allocator); state MB is what is held (weights, gradients, AdamW moments), "
    "so state + step ≈ a whole run's memory. The authors report GPU memory (linear / fine-tune) "
    + ", ".join(f"{k} {a} / {b} GB" for k, (a, b) in AUTHORS_SEG_MEMORY_GB.items())
    + " (batch 12 LIDC 160² / 8 MMWHS 64³, one H200)."
)


def bench_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Bench rows only, with the batch and dtype unpacked from ``options`` as columns."""
    f = frame[frame["kind"] == "bench"].copy()
    opts = f["options"].map(lambda text: json.loads(text) if text else {})
    f["batch"] = opts.map(lambda o: int(o.get("batch", 1)))
    f["dtype"] = opts.map(lambda o: str(o.get("dtype", "fp32")))
    f["seg_classes"] = opts.map(lambda o: int(o.get("seg_classes", 0)))
    f["checkpoint"] = opts.map(lambda o: bool(o.get("checkpoint", False)))
    return f


GROUP_BY = ["protocol", "dtype", "batch", "device", "seg_classes", "checkpoint"]


def _groups(f: pd.DataFrame):
    """(key, rows) per table: backbone-only modes first, then the segmentation steps."""
    keyed = [(tuple(key), group) for key, group in f.groupby(GROUP_BY, sort=True)]
    order = {protocol: i + 1 for i, protocol in enumerate(SEG_PROTOCOLS)}  # frozen before fine-tuned, as the authors
    keyed.sort(key=lambda item: (order.get(item[0][0], 0), item[0]))
    for (protocol, dtype, batch, device, classes, checkpoint), group in keyed:
        yield (protocol, dtype, int(batch), device, int(classes), bool(checkpoint)), group


def _title(protocol: str, dtype: str, batch: int, device: str, classes: int, checkpoint: bool) -> str:
    ckpt = ", activation checkpointing" if checkpoint else ""
    if protocol in SEG_PROTOCOLS:
        kind = "binary, one logit channel" if classes == 2 else f"{classes} classes"
        return f"## {SEG_PROTOCOLS[protocol]}, {kind}, {dtype}, batch {batch}{ckpt} — {device}"
    mode = "forward + backward + AdamW step" if protocol == "bench-train" else "forward"
    return f"## {mode}, {dtype}, batch {batch}{ckpt} — {device}"


def _strategy_rank(name: str) -> tuple[int, str]:
    return rank("strategy", name)


def _backbone_rank(name: str) -> tuple[int, str]:
    return rank("backbone", name)


def _cell_status(group: pd.DataFrame, backbone: str, strategy: str, size: int) -> tuple[str, pd.Series | None]:
    rows = group[(group["backbone"] == backbone) & (group["strategy"] == strategy) & (group["input_size"] == size)]
    if rows.empty:
        return "", None
    if (rows["status"] == "skipped").all():
        return "skipped", None
    if (rows["status"] == "failed").any():
        error = str(rows["error"].iloc[0] or "")
        return ("OOM" if error.startswith("out of memory") else "failed"), None
    return "ok", rows.set_index("metric")["value"]


def markdown(frame: pd.DataFrame) -> str:
    """The Markdown report: one section and table per (mode, dtype, batch, device)."""
    f = bench_rows(frame)
    if f.empty:
        return "No bench results.\n"
    out = ["# liftbench bench", ""]
    seg_heading = False
    for (protocol, dtype, batch, device, classes, checkpoint), group in _groups(f):
        seg = protocol in SEG_PROTOCOLS
        if seg and not seg_heading:
            out += ["# Segmentation training step (`liftbench bench --seg`)", "", SEG_NOTE, ""]
            seg_heading = True
        sizes = sorted(int(s) for s in group["input_size"].unique())
        peaks = group[group["metric"] == "matmul_peak_gflops"]["value"]
        out.append(_title(protocol, dtype, batch, device, classes, checkpoint))
        out.append("")
        weights = ", ".join(sorted(set(group["weights"].dropna())))
        line = f"Weights: {weights}. Latency is the median over repeats; % peak is achieved FLOP/s over a {dtype} matmul peak"
        if not peaks.empty:
            line += f" of {peaks.median():.0f} GFLOP/s (median over configurations; measured before each)"
        out += [line + ".", ""]
        fixed = ["head params", "state MB"] if seg else []
        header = ["backbone", "strategy", *fixed] + [f"{s}³ {label}" for s in sizes for _, label, _ in MEASURES]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|")
        for backbone in sorted(group["backbone"].unique(), key=_backbone_rank):
            strategies = sorted(group[group["backbone"] == backbone]["strategy"].unique(), key=_strategy_rank)
            for strategy in strategies:
                cells = [backbone, strategy] + (_seg_cells(group, backbone, strategy) if seg else [])
                for size in sizes:
                    status, values = _cell_status(group, backbone, strategy, size)
                    if values is None:
                        cells += [status] + [""] * (len(MEASURES) - 1)
                        continue
                    cells += [fmt.format(values[m]) if m in values and pd.notna(values[m]) else "" for m, _, fmt in MEASURES]
                out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _seg_cells(group: pd.DataFrame, backbone: str, strategy: str) -> list[str]:
    """Head parameters (millions) and held state (MB, the largest size's) of one row; blank if never measured."""
    rows = group[(group["backbone"] == backbone) & (group["strategy"] == strategy) & (group["status"] == "ok")]
    head = rows[rows["metric"] == "head_parameters"]["value"]
    state = rows[rows["metric"] == "state_memory_mb"]["value"]
    return [f"{head.iloc[0] / 1e6:.2f} M" if len(head) else "", f"{state.max():.0f}" if len(state) else ""]


def plot(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Log-log time and memory against volume size, a line per strategy, a panel per backbone.

    Files: ``time_<mode>_<dtype>_b<batch>.png|svg`` and ``memory_...`` (device appended if several).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = bench_rows(frame)
    f = f[f["status"] == "ok"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    several_devices = f["device"].nunique() > 1
    for index, ((protocol, dtype, batch, _device, classes, checkpoint), group) in enumerate(_groups(f)):
        suffix = f"{protocol.removeprefix('bench-')}_{dtype}_b{batch}" + (f"_k{classes}" if classes else "")
        suffix += ("_ckpt" if checkpoint else "") + (f"_d{index}" if several_devices else "")
        backbones = sorted(group["backbone"].unique(), key=_backbone_rank)
        for metric, name, ylabel in (("latency_ms_median", "time", "forward time (ms)"), ("peak_memory_mb", "memory", "peak memory (MB)")):
            if protocol != "bench-forward":
                ylabel = ylabel.replace("forward", "train step")
            fig, axes = plt.subplots(1, len(backbones), figsize=(4.2 * len(backbones), 3.6), squeeze=False)
            for ax, backbone in zip(axes[0], backbones, strict=True):
                sub = group[(group["backbone"] == backbone) & (group["metric"] == metric) & (group["value"] > 0)]
                for strategy in sorted(sub["strategy"].unique(), key=_strategy_rank):
                    line = sub[sub["strategy"] == strategy].sort_values("input_size")
                    ax.plot(line["input_size"], line["value"], marker="o", label=strategy, color=f"C{_strategy_rank(strategy)[0] % 10}")
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.set_title(backbone)
                ax.set_xlabel("volume size (voxels per side)")
                ax.set_ylabel(ylabel)
                sizes = sorted(group["input_size"].unique())
                ax.set_xticks(sizes, [f"{s}³" for s in sizes])
                ax.grid(True, which="both", alpha=0.3)
                if len(sub):
                    ax.legend(fontsize=8)
            fig.suptitle(f"{name}: {protocol.removeprefix('bench-')}, {dtype}, batch {batch}")
            fig.tight_layout()
            written += save(fig, out / f"{name}_{suffix}", dpi=120)
    return written


def write_report(frame: pd.DataFrame, results_dir: Path) -> list[Path]:
    """``<results_dir>/bench.md`` and ``<results_dir>/plots/*``; returns the files written."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    md = results_dir / "bench.md"
    write_text_atomic(md, markdown(frame))
    return [md, *plot(frame, results_dir / "plots")]
