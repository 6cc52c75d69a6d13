"""Wall time of the cached linear probe (``linear``) against the paper's probe (``linear-aug``).

Both run through the CLI (``liftbench.cli.main``) in this process, on the synthetic set (default
120/45/45 volumes) at size 32, ViT-S (DINOv3 architecture, random weights), PlaneCycle (pcg), with the
same iterations and warm-up. ``linear`` uses a fresh, empty feature cache, so its time includes its
one feature extraction. Results (Parquet) go to ``OUT/linear`` and ``OUT/linear-aug``, the table to
``OUT/probe_speed.md``.

``linear-aug`` runs a backbone forward on an augmented batch every step, so on a CPU its full run
takes hours. ``--aug-seeds`` / ``--aug-iterations`` measure it on fewer seeds / iterations; the full
time is then extrapolated from the measured runs: each run's fixed part (val/test features, from the
recorded volumes/s) plus its measured time per step times the full iteration count, plus the CLI's
own overhead once; missing seeds are added at the mean extrapolated run time. The table says which
figures are measured and which extrapolated.

    python benchmarks/probe_speed.py                       # both in full (hours on a CPU)
    python benchmarks/probe_speed.py --aug-iterations 20   # linear-aug measured on 20 iterations per seed
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from liftbench.cli import main
from liftbench.run import context
from liftbench.run.results import read_results


def run_protocol(protocol: str, out: Path, cache: Path, *, seeds: int, iterations: int, warmup: int, size: int) -> float:
    """Run one protocol through the CLI; returns the wall seconds."""
    shutil.rmtree(out, ignore_errors=True)
    context._memo.clear()  # both protocols build the backbone and data themselves
    args = [
        "run", "--datasets", "synthetic", "--backbones", "vits", "--weights", "random", "--strategies", "pcg",
        "--protocol", protocol, "--seeds", str(seeds), "--iterations", str(iterations), "--warmup", str(warmup),
        "--size", str(size), "--results", str(out), "--cache-dir", str(cache), "--force", "--no-leaderboard",
    ]
    start = time.perf_counter()
    rc = main(args)
    wall = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"{protocol} failed with exit status {rc}")
    return wall


def per_run(out: Path) -> list[dict]:
    frame = read_results(out).frame
    runs = frame.groupby("run_key").first()
    return [{"seed": int(r.seed), "wall": float(r.wall_seconds), "vps": float(r.volumes_per_second)} for r in runs.itertuples()]


def main_(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/probe-speed")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--aug-seeds", type=int, help="seeds of linear-aug actually run (default: --seeds)")
    parser.add_argument("--aug-iterations", type=int, help="iterations of linear-aug actually run (default: --iterations)")
    args = parser.parse_args(argv)
    aug_seeds = args.aug_seeds or args.seeds
    aug_iterations = args.aug_iterations or args.iterations
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="probe-speed-cache-") as cache:
        linear_wall = run_protocol("linear", out / "linear", Path(cache), seeds=args.seeds, iterations=args.iterations, warmup=args.warmup, size=args.size)
        aug_wall = run_protocol("linear-aug", out / "linear-aug", Path(cache), seeds=aug_seeds, iterations=aug_iterations, warmup=args.warmup, size=args.size)

    runs = per_run(out / "linear-aug")
    evaluated = 90  # val + test volumes of the default synthetic set, featurised once per linear-aug run
    full_runs = []
    for run in runs:
        fixed = evaluated / run["vps"]
        per_step = max(run["wall"] - fixed, 0.0) / aug_iterations
        full_runs.append(fixed + per_step * args.iterations)
    overhead = aug_wall - sum(r["wall"] for r in runs)
    aug_full = overhead + sum(full_runs) + (args.seeds - aug_seeds) * (sum(full_runs) / len(full_runs))
    extrapolated = (aug_seeds, aug_iterations) != (args.seeds, args.iterations)
    step_seconds = sum((r["wall"] - evaluated / r["vps"]) / aug_iterations for r in runs) / len(runs)

    rows = [
        ("linear (cached features)", args.seeds, args.iterations, f"{linear_wall:.1f}", "measured", "1.0×"),
        ("linear-aug (paper probe)", aug_seeds, aug_iterations, f"{aug_wall:.1f}", "measured", "—" if extrapolated else f"{aug_wall / linear_wall:.1f}×"),
    ]
    if extrapolated:
        rows.append(("linear-aug (paper probe)", args.seeds, args.iterations, f"{aug_full:.0f}", "extrapolated", f"{aug_full / linear_wall:.0f}×"))
    lines = [
        "# Probe speed: cached linear probe vs the paper's augmented probe",
        "",
        "<!-- Written by benchmarks/probe_speed.py; rerun it to refresh. -->",
        "",
        f"Synthetic set (120/45/45 volumes) at {args.size}³, ViT-S (`vit_small_patch16_dinov3`, random weights), "
        f"strategy pcg, batch 32, `--iterations {args.iterations} --warmup {args.warmup}` for both protocols "
        "(the speed-up compares the same number of seeds and iterations). `linear` starts from an empty feature "
        "cache, so its time includes its one feature extraction; both include building the backbone and the data.",
        "",
        "| protocol | seeds | iterations | wall seconds | figure | speed-up of `linear` |",
        "|---|---:|---:|---:|---|---:|",
        *[f"| {' | '.join(str(c) for c in row)} |" for row in rows],
        "",
        f"- linear-aug: {step_seconds:.2f} s per training step (backbone forward on 32 augmented volumes + head step), "
        f"mean over {len(runs)} run(s).",
    ]
    if extrapolated:
        lines.append(
            f"- linear-aug was run on {aug_seeds} seed(s) × {aug_iterations} iterations; the {args.seeds} × {args.iterations} "
            "figure adds, per run, the measured time per step times the missing iterations (the val/test feature "
            "pass is counted once per run, as in the measured runs). Its Parquet results are those of the measured runs."
        )
        lines.append(
            f"- Measured lower bound: linear-aug on {aug_seeds} seed(s) × {aug_iterations} iterations alone took "
            f"{aug_wall / linear_wall:.1f}× as long as `linear` on {args.seeds} seeds × {args.iterations} iterations."
        )
    lines += [
        f"- Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, CPU only; figures are indicative (one shared 2-core machine).",
        "",
    ]
    (out / "probe_speed.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
