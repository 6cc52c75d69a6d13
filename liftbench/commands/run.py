"""``liftbench run``: plan the grid, resume, execute with a progress bar, summarise, show the board."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from liftbench.commands.run_options import DEMO, PROTOCOL_FLAGS, key_values, parse_seeds
from liftbench.errors import UsageError
from liftbench.plugins import build_registry, warn_plugin_errors
from liftbench.protocols.features import default_cache_dir
from liftbench.runner import ExecutionContext, execute, plan

SELECTORS = ("strategies", "backbones", "datasets", "protocol", "weights", "size", "seeds", "results")


def _settings(args) -> tuple[dict, bool]:
    """The run's settings: the demo's when the user chose nothing, else the user's with defaults."""
    demo = not any(getattr(args, name) is not None for name in (*SELECTORS, "schedule"))
    base = dict(DEMO) if demo else {
        "datasets": "synthetic", "backbones": "vits", "strategies": "all", "protocol": "linear",
        "weights": "pretrained", "size": 64, "seeds": "1", "results": "results/latest", "options": {},
    }
    settings = {name: getattr(args, name) if getattr(args, name) is not None else base[name] for name in SELECTORS}
    options = dict(base["options"])
    options.update({flag: getattr(args, flag) for flag in PROTOCOL_FLAGS if getattr(args, flag) is not None})
    options.update(key_values(args.opt, "--opt"))
    if args.quick:
        options["quick"] = True
    settings["options"] = options
    settings["dataset_options"] = key_values(args.dataset_opt, "--dataset-opt")
    return settings, demo


SLURM_OPTIONS = ("partition", "time", "gpus", "cpus", "mem", "account", "qos", "array_parallelism", "extra", "logs")


def _executor_options(args) -> dict:
    """The ``--slurm-*`` values the user gave (plus --force / --retry-failed, which a remote executor
    needs when it decides what to resubmit)."""
    options = {name: getattr(args, f"slurm_{name}", None) for name in SLURM_OPTIONS}
    options = {name: value for name, value in options.items() if value not in (None, [], "")}
    return {**options, "force": bool(args.force), "retry_failed": bool(args.retry_failed)}


def run_command(args) -> int:
    settings, demo = _settings(args)
    registry = build_registry(args.disable_plugin)
    warn_plugin_errors(registry)
    runs = plan(
        registry,
        datasets=registry.resolve("dataset", settings["datasets"]),
        backbones=registry.resolve("backbone", settings["backbones"]),
        strategies=registry.resolve("strategy", settings["strategies"]),
        protocols=registry.resolve("protocol", settings["protocol"]),
        seeds=parse_seeds(str(settings["seeds"])),
        size=int(settings["size"]),
        weights=str(settings["weights"]),
        schedule=args.schedule,
        options=settings["options"],
        dataset_options=settings["dataset_options"],
    )
    executor = registry.get("executor", args.executor)
    results_dir = Path(settings["results"])
    if demo:
        print("liftbench demo: synthetic set (32^3), DINOv3 ViT-S architecture, every strategy, linear probe, one seed.")
    if settings["weights"] == "random":
        print("*** RANDOM WEIGHTS: the backbones are untrained (--weights random); every result row records it. ***")
    bar = tqdm(total=len(runs), unit="run", dynamic_ncols=True, file=sys.stderr)

    def on_done(run, status):
        bar.set_postfix_str(f"{run.spec.strategy} {run.spec.backbone} {status}")
        bar.update(1)

    executor_options = _executor_options(args)
    if any(k not in ("force", "retry_failed") for k in executor_options) and executor.name == "local":
        raise UsageError(f"--slurm-* options apply to --executor slurm, not {executor.name!r}")
    ctx = ExecutionContext(
        registry=registry,
        results_dir=results_dir,
        cache_dir=Path(args.cache_dir) if args.cache_dir else default_cache_dir(),
        device=args.device,
        data_root=args.data_root,
        log=tqdm.write,
        on_done=on_done,
        executor_options=executor_options,
        disabled_plugins=tuple(args.disable_plugin),
    )
    try:
        todo = execute(runs, executor, ctx, force=args.force, retry_failed=args.retry_failed)
        bar.update(len(runs) - len(todo))
    finally:
        bar.close()
    counts = ctx.counts
    print(
        f"\n{len(runs)} runs: {counts['ok']} done, {counts['skipped']} skipped, {counts['failed']} failed, "
        f"{counts['already done']} already in {results_dir}/ (use --force to rerun)"
    )
    if counts["failed"]:
        print(f"failed runs are recorded with their error in {results_dir}/; rerun them with --retry-failed")
    if not args.no_leaderboard:
        from liftbench.commands.board import print_board

        print_board([results_dir])
    return 1 if counts["failed"] else 0
