"""``liftbench run``: plan the grid, resume, execute with a progress bar, summarise, show the board."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from liftbench.backbones import random_seed
from liftbench.commands.plugin_flags import executor_flags, protocol_flags
from liftbench.commands.run_options import DEMO, DEMO_TITLE, key_values, parse_seeds
from liftbench.errors import ExitCode
from liftbench.options import resolve
from liftbench.plugins import build_registry, warn_plugin_errors
from liftbench.protocols.features import default_cache_dir
from liftbench.runner import ExecutionContext, execute, plan

SELECTORS = ("strategies", "backbones", "datasets", "protocol", "weights", "size", "seeds", "results")
# Choosing where results go (or how to run them) is not choosing a grid: the demo stays the demo.
NOT_A_CHOICE = ("results",)


def _settings(args) -> tuple[dict, bool]:
    """The run's settings: the demo's when the user chose no grid, else the user's with defaults."""
    demo = not any(getattr(args, name) is not None for name in (*SELECTORS, "schedule") if name not in NOT_A_CHOICE)
    base = dict(DEMO) if demo else {
        "datasets": "synthetic", "backbones": "vits", "strategies": "all", "protocol": "linear",
        "weights": "pretrained", "size": 64, "seeds": "1", "results": "results/latest", "options": {},
    }
    settings = {name: getattr(args, name) if getattr(args, name) is not None else base[name] for name in SELECTORS}
    options = dict(base["options"])
    options.update(protocol_flags(args))
    options.update(key_values(args.opt, "--opt"))
    if args.quick:
        options["quick"] = True
    settings["options"] = options
    settings["dataset_options"] = key_values(args.dataset_opt, "--dataset-opt")
    return settings, demo


def _executor_options(args, executor) -> dict:
    """The chosen executor's declared options the user gave (cast to their types), plus --force and
    --retry-failed, which a remote executor needs when it decides what to resubmit."""
    given = executor_flags(args, executor.name)
    options = {k: v for k, v in resolve(executor.options, given, owner=f"executor {executor.name!r}").items() if k in given}
    return {**options, "force": bool(args.force), "retry_failed": bool(args.retry_failed)}


def _dry_run(runs, registry, args, results_dir: Path) -> int:
    """Print the plan: runs, skipped pairs, what is already done, and each extraction group's cost."""
    from liftbench.estimate import estimate, render
    from liftbench.runner import existing_statuses

    done = existing_statuses(results_dir) if results_dir.is_dir() and not args.force else {}
    todo = [r for r in runs if r.key not in done or (args.retry_failed and done[r.key] == "failed")]
    skipped = [r for r in todo if r.skip_reason]
    print(f"plan: {len(runs)} runs; {len(runs) - len(todo)} already in {results_dir}/, {len(skipped)} skipped pairs, "
          f"{len(todo) - len(skipped)} to run")  # fmt: skip
    for reason in sorted({r.skip_reason for r in skipped}):
        print(f"  skipped: {reason}")
    print(render(estimate(registry, todo, device=args.device, data_root=args.data_root), args.device))
    return ExitCode.OK


def run_command(args) -> int:
    settings, demo = _settings(args)
    seed = random_seed(str(settings["weights"]))  # checks random:SEED before anything runs
    registry = getattr(args, "registry", None) or build_registry(args.disable_plugin)
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
    if args.dry_run:
        return _dry_run(runs, registry, args, results_dir)
    if demo:
        print(DEMO_TITLE)
    if seed is not None:
        print(f"*** RANDOM WEIGHTS (seed {seed}): the backbones are untrained (--weights {settings['weights']}); "
              "every result row records it. ***")
    bar = tqdm(total=len(runs), unit="run", dynamic_ncols=True, file=sys.stderr)

    def on_done(run, status):
        bar.set_postfix_str(f"{run.spec.strategy} {run.spec.backbone} {status}")
        bar.update(1)

    executor_options = _executor_options(args, executor)
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
    return ExitCode.RUNS_FAILED if counts["failed"] else ExitCode.OK
