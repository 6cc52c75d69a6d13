"""How far ``liftbench run --dry-run``'s extraction estimate is from a real run.

For each grid, the dry-run estimate (:func:`liftbench.cost.estimate.estimate`: FLOPs counted on the meta
device, seconds from a one-forward calibration per backbone and size) is computed per feature-extraction
group; then the grid runs for real through the CLI (``liftbench.cli.main``) from an empty feature cache,
into temporary results and cache folders. The measured extraction time of a group is its volumes divided
by the ``volumes_per_second`` its result rows record (the linear protocol records the rate of the one
extraction that filled the cache). Grids:

* ``demo``: what ``liftbench`` with no arguments runs (synthetic 32³, the built-in ViT and ResNet, every
  strategy, cached linear probe, 1000 steps, 3 seeds);
* ``demo64``: the same backbones and strategies at 64³, 1 seed (probe 1000 steps / 50 warm-up, as the demo;
  the probe does not enter the comparison).

    python benchmarks/estimate_vs_actual.py                      # both grids -> results/bench/estimate_vs_actual.md
    python benchmarks/estimate_vs_actual.py --grids demo --out /tmp/eva.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from liftbench.cli import main
from liftbench.commands.run_options import parse_seeds
from liftbench.cost.estimate import estimate
from liftbench.plugin.manager import build_registry
from liftbench.run import context
from liftbench.run.results import read_results
from liftbench.study.grid_runs import plan

# the demo study's one grid (liftbench/studies/demo.toml)
DEMO = build_registry().get("study", "demo").load().grids[0]
GRIDS = {
    "demo": {"size": 32, "seeds": "3", "argv": []},  # no grid flags: the demo itself
    "demo64": {"size": 64, "seeds": "1", "argv": ["--backbones", ",".join(DEMO.backbones), "--strategies", "all",
                                                  "--size", "64", "--seeds", "1", "--iterations", "1000", "--warmup", "50"]},
}  # fmt: skip


def planned(registry, size: int, seeds: str):
    return plan(
        registry,
        datasets=registry.resolve("dataset", DEMO.datasets),
        backbones=registry.resolve("backbone", DEMO.backbones),
        strategies=registry.resolve("strategy", DEMO.strategies),
        protocols=registry.resolve("protocol", DEMO.protocols),
        seeds=parse_seeds(seeds),
        size=size,
        weights=DEMO.weights,
        options=dict(DEMO.options),
    )


def group_label(backbone: str, strategy: str, schedule: str) -> str:
    return f"{backbone} / {strategy}" + (f" [{schedule}]" if schedule else "")


def compare(name: str, grid: dict, work: Path) -> dict:
    registry = build_registry()
    runs = planned(registry, grid["size"], grid["seeds"])
    start = time.perf_counter()
    costs = estimate(registry, runs, device="cpu")
    estimate_seconds = time.perf_counter() - start
    results, cache = work / f"{name}-results", work / f"{name}-cache"
    context._memo.clear()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", *grid["argv"], "--results", str(results), "--cache-dir", str(cache), "--no-leaderboard"])
    run_seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"grid {name} exited {code}")
    frame = read_results(results).frame
    frame = frame[frame["status"] == "ok"]
    rows = []
    for cost in costs:
        sel = frame[
            (frame["backbone"] == cost.backbone)
            & (frame["strategy"] == cost.strategy)
            & (frame["schedule"] == cost.schedule)
        ]
        vps = float(sel["volumes_per_second"].dropna().iloc[0])
        measured = cost.volumes / vps
        rows.append({"group": group_label(cost.backbone, cost.strategy, cost.schedule), "volumes": cost.volumes,
                     "gflop": cost.gflop_per_volume, "estimated": cost.seconds, "measured": measured,
                     "ratio": cost.seconds / measured})  # fmt: skip
    return {"name": name, "size": grid["size"], "seeds": grid["seeds"], "rows": rows,
            "estimate_seconds": estimate_seconds, "run_seconds": run_seconds}  # fmt: skip


def render(grids: list[dict]) -> str:
    lines = [
        "# Dry-run extraction estimate vs measured",
        "",
        f"Machine: {platform.machine()} CPU, {torch.get_num_threads()} torch threads, torch {torch.__version__}; fp32; "
        "feature batch 4; each grid run from an empty feature cache. Estimated = `liftbench run --dry-run`'s "
        "`extract s` (FLOPs on meta × the FLOP rate one real forward of the same lifting reaches at 32³); measured = volumes ÷ the "
        "volumes/s the result rows record for the group's one extraction. Ratio = estimated ÷ measured "
        "(< 1: the estimate is optimistic).",
        "",
        "Regenerate: `python benchmarks/estimate_vs_actual.py`.",
    ]
    all_ratios = []
    for g in grids:
        ratios = [r["ratio"] for r in g["rows"]]
        all_ratios += ratios
        worst = max(g["rows"], key=lambda r: abs(__import__("math").log(r["ratio"])))
        lines += ["", f"## {g['name']}: synthetic {g['size']}³, {g['seeds']} seed(s)", "",
                  "| group | volumes | GFLOP/vol | estimated s | measured s | ratio |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in g["rows"]:
            lines.append(
                f"| {r['group']} | {r['volumes']} | {r['gflop']:.2f} | {r['estimated']:.2f} | {r['measured']:.2f} | {r['ratio']:.2f} |"
            )
        est, meas = sum(r["estimated"] for r in g["rows"]), sum(r["measured"] for r in g["rows"])
        lines += ["", f"Total extraction: estimated {est:.1f} s, measured {meas:.1f} s (ratio {est / meas:.2f}). "
                  f"Per group: median ratio {statistics.median(ratios):.2f}, worst {worst['ratio']:.2f} ({worst['group']}). "
                  f"The estimate itself took {g['estimate_seconds']:.1f} s; the whole grid {g['run_seconds']:.1f} s."]  # fmt: skip
    if len(grids) > 1:
        lines += [
            "",
            f"**All groups:** median ratio {statistics.median(all_ratios):.2f}, range {min(all_ratios):.2f}–{max(all_ratios):.2f}.",
        ]
    return "\n".join(lines) + "\n"


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", default="demo,demo64", help="comma list of: " + ", ".join(GRIDS))
    parser.add_argument("--out", default="results/bench/estimate_vs_actual.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="liftbench-eva-") as tmp:
        grids = [compare(name, GRIDS[name], Path(tmp)) for name in args.grids.split(",")]
    text = render(grids)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main_cli()
