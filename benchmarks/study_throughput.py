"""Where the wall time of a whole study goes, run the way a user runs it.

The grid runs through the CLI (``liftbench.cli.main``) in this process, from an empty feature cache and
an empty temporary results folder; by default it is the demo (``liftbench`` with no arguments: synthetic
32³, the built-in ViT and ResNet, every strategy, cached linear probe, 1000 steps, 3 seeds). The stages
are timed by wrapping the functions that do them (the wrappers only add ``perf_counter`` calls):

* data: ``RunContext.dataset`` (generating / loading the volumes; kept across runs of the grid);
* backbone build: ``RunContext.backbone`` (building the 2D model and loading its weights; kept across runs);
* lifting: ``RunContext.lift`` (wrapping / patching the model per run; undoing it falls under other);
* feature extraction: ``liftbench.api.extract`` (the lifted forwards);
* feature cache I/O: the rest of ``cached_features`` (hashing, ``torch.save`` / ``torch.load``);
* probe training: ``fit_head`` as the linear protocol calls it (per seed);
* evaluation: ``probe_result`` (test predictions and metrics);
* result writing: ``write_run`` / ``write_atomic`` in the runner (Parquet rows and probabilities);
* leaderboard: ``print_board`` at the end;
* other: the rest of the measured wall (imports of torch and liftbench, planning, provenance, the
  progress bar, ...), measured from before ``import torch``.

The achieved fraction of the matmul peak during extraction is each group's FLOPs
(``liftbench.cost.estimate.trace``, per volume, × its volumes) over its extraction seconds, divided by
``liftbench.cost.bench.measure.matmul_peak_gflops`` measured here (fp32; for a bf16 study the bf16 matmul peak too).

    python benchmarks/study_throughput.py                        # demo, fp32 and bf16 -> results/bench/study_throughput.md
    python benchmarks/study_throughput.py --dtypes fp32 --out /tmp/st.md -- --size 64 --seeds 1 --backbones vit-tiny-shapes

Anything after ``--`` is passed to ``liftbench run`` (a grid of your own; without grid flags it is the demo).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

import liftbench.commands.board as board  # noqa: E402
import liftbench.protocols.linear as linear  # noqa: E402
import liftbench.run.feature_cache as features  # noqa: E402
import liftbench.run.runner as runner  # noqa: E402
from liftbench.cli import main  # noqa: E402
from liftbench.run import context  # noqa: E402
from liftbench.run.context import RunContext  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T0

STAGES = ["data", "backbone build", "lifting", "feature extraction", "feature cache I/O", "probe training",
          "evaluation", "result writing", "leaderboard", "other"]  # fmt: skip


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.extract_by_group: dict[tuple, float] = defaultdict(float)
        self.volumes_by_group: dict[tuple, int] = defaultdict(int)
        self.group: tuple | None = None
        self._depth = 0

    def wrap(self, stage: str, fn):
        timers = self

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timers.seconds[stage] += time.perf_counter() - start
                timers.calls[stage] += 1

        return timed


@contextlib.contextmanager
def instrumented(timers: Timers):
    """Patch the stage seams for the duration of the block; restore them afterwards."""
    patches = []

    def patch(owner, name, new):
        patches.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    patch(RunContext, "dataset", timers.wrap("data", RunContext.dataset))
    patch(RunContext, "backbone", timers.wrap("backbone build", RunContext.backbone))
    patch(RunContext, "lift", timers.wrap("lifting", RunContext.lift))

    original_extract = features.extract

    def extract(lifted, volumes, *args, **kwargs):
        start = time.perf_counter()
        out = original_extract(lifted, volumes, *args, **kwargs)
        seconds = time.perf_counter() - start
        timers.seconds["feature extraction"] += seconds
        timers.extract_by_group[timers.group] += seconds
        timers.volumes_by_group[timers.group] += len(volumes)
        return out

    patch(features, "extract", extract)
    original_cached = linear.cached_features

    def cached_features(cache_dir, parts, *args, **kwargs):
        timers.group = (parts["backbone"], parts["strategy"], parts["schedule"], parts["size"])
        before = timers.seconds["feature extraction"]
        start = time.perf_counter()
        try:
            return original_cached(cache_dir, parts, *args, **kwargs)
        finally:
            timers.seconds["feature cache I/O"] += (
                time.perf_counter() - start - (timers.seconds["feature extraction"] - before)
            )

    patch(linear, "cached_features", cached_features)
    patch(linear, "fit_head", timers.wrap("probe training", linear.fit_head))
    patch(linear, "probe_result", timers.wrap("evaluation", linear.probe_result))
    patch(runner, "write_run", timers.wrap("result writing", runner.write_run))
    patch(runner, "write_atomic", timers.wrap("result writing", runner.write_atomic))
    patch(board, "print_board", timers.wrap("leaderboard", board.print_board))
    try:
        yield
    finally:
        for owner, name, old in reversed(patches):
            setattr(owner, name, old)


def study(dtype: str, extra: list[str], work: Path) -> dict:
    from liftbench.cost.estimate import trace
    from liftbench.plugin.manager import build_registry

    timers = Timers()
    results, cache = work / f"{dtype}-results", work / f"{dtype}-cache"
    context._memo.clear()  # a fresh process builds data and backbones: so does each study here
    argv = ["run", *extra, "--results", str(results), "--cache-dir", str(cache), "--dtype", dtype]
    start = time.perf_counter()
    with instrumented(timers), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"liftbench {' '.join(argv)} exited {code}")
    from liftbench.run.results import read_results

    frame = read_results(results).frame
    ok = frame[frame["status"] == "ok"]
    runs = ok["run_key"].nunique()
    registry = build_registry()
    flops = 0.0
    for (backbone, strategy, schedule, size), _ in timers.extract_by_group.items():
        per_volume, _ = trace(registry, backbone, strategy, schedule, int(size), batch=1)
        flops += per_volume * timers.volumes_by_group[(backbone, strategy, schedule, size)]
    return {"dtype": dtype, "argv": argv, "wall": wall, "timers": timers, "runs": runs, "flops": flops,
            "groups": len(timers.extract_by_group), "volumes": sum(timers.volumes_by_group.values()),
            "per_group_volumes": next(iter(timers.volumes_by_group.values()), 0)}  # fmt: skip


def render(studies: list[dict], peaks: dict[str, float], import_seconds: float, extra: list[str]) -> str:
    grid = "the demo (`liftbench`: synthetic 32³, vit-tiny-shapes + resnet-tiny-shapes, every strategy, cached linear probe, 1000 steps, 3 seeds)"
    if extra:
        grid = f"`liftbench run {' '.join(extra)}`"
    lines = [
        "# Study throughput: where a whole grid's wall time goes",
        "",
        f"Grid: {grid}, from an empty feature cache. Machine: {platform.machine()} CPU, {torch.get_num_threads()} torch "
        f"threads (the probe runs on 1), torch {torch.__version__}. Matmul peak measured here: fp32 {peaks['fp32']:.0f} GFLOP/s"
        + (f", bf16 {peaks['bf16']:.0f} GFLOP/s" if "bf16" in peaks else "")
        + ".",
        "",
        "Stages are timed by wrapping the functions that do them (see the script's docstring); `other` is the rest of "
        f"the wall: CLI, planning, provenance, progress bar, and the imports of torch and liftbench ({import_seconds:.1f} s, "
        "counted once, in each column). The studies run one after the other in one process: the synthetic set's "
        "generator memoises its volumes (``lru_cache`` in ``liftbench/datasets/synthetic.py``), so a second column's data stage "
        "is ~0 — a fresh process pays the first column's figure. Regenerate: `python benchmarks/study_throughput.py`.",
        "",
    ]
    header = "| stage | " + " | ".join(f"{s['dtype']} s | {s['dtype']} share" for s in studies) + " |"
    lines += [header, "|---|" + "---:|---:|" * len(studies)]
    for s in studies:
        s["total"] = s["wall"] + import_seconds
        s["timers"].seconds["other"] = s["total"] - sum(v for k, v in s["timers"].seconds.items() if k != "other")
    for stage in STAGES:
        cells = []
        for s in studies:
            v = s["timers"].seconds.get(stage, 0.0)
            calls = s["timers"].calls.get(stage)
            cells.append(
                f"{v:.2f}" + (f" ({calls}×)" if stage in ("probe training", "feature extraction") and calls else "")
            )
            cells.append(f"{100 * v / s['total']:.1f}%")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append("| **total wall** | " + " | ".join(f"**{s['total']:.2f}** | 100%" for s in studies) + " |")
    lines += ["", "| figure | " + " | ".join(s["dtype"] for s in studies) + " |", "|---|" + "---:|" * len(studies)]

    def row(name, fn):
        lines.append(f"| {name} | " + " | ".join(fn(s) for s in studies) + " |")

    row("runs (ok) / extraction groups", lambda s: f"{s['runs']} / {s['groups']}")
    row("volumes extracted (groups × volumes)", lambda s: f"{s['volumes']} ({s['groups']} × {s['per_group_volumes']})")
    row("extraction volumes/s", lambda s: f"{s['volumes'] / s['timers'].seconds['feature extraction']:.1f}")
    row("volumes/s over the whole study (extracted ÷ total wall)", lambda s: f"{s['volumes'] / s['total']:.1f}")
    row(
        "probe seconds per seed (mean)",
        lambda s: f"{s['timers'].seconds['probe training'] / max(s['timers'].calls['probe training'], 1):.2f}",
    )
    row("extraction GFLOP (trace × volumes)", lambda s: f"{s['flops'] / 1e9:.0f}")
    row("extraction GFLOP/s", lambda s: f"{s['flops'] / 1e9 / s['timers'].seconds['feature extraction']:.1f}")
    row(
        "% of fp32 matmul peak during extraction",
        lambda s: f"{100 * s['flops'] / 1e9 / s['timers'].seconds['feature extraction'] / peaks['fp32']:.1f}%",
    )
    if "bf16" in peaks:
        row(
            "% of bf16 matmul peak during extraction",
            lambda s: f"{100 * s['flops'] / 1e9 / s['timers'].seconds['feature extraction'] / peaks['bf16']:.1f}%",
        )
    return "\n".join(lines) + "\n"


def main_cli() -> None:
    from liftbench.cost.bench.measure import matmul_peak_gflops

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma list: fp32, bf16")
    parser.add_argument("--out", default="results/bench/study_throughput.md")
    parser.add_argument("run_args", nargs="*", help="after --: flags for liftbench run (default: the demo)")
    args = parser.parse_args()
    dtypes = args.dtypes.split(",")
    with tempfile.TemporaryDirectory(prefix="liftbench-study-") as tmp:
        studies = [study(dtype, args.run_args, Path(tmp)) for dtype in dtypes]
    peaks = {"fp32": matmul_peak_gflops("cpu")}
    if "bf16" in dtypes:
        peaks["bf16"] = matmul_peak_gflops("cpu", torch.bfloat16)
    text = render(studies, peaks, IMPORT_SECONDS, args.run_args)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main_cli()
