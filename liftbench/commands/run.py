"""``liftbench run``: plan the grid, resume, execute with a progress bar, summarise, show the board.

The runner and the result files' stack (pyarrow, pandas) are imported only to execute (or to read an existing
results folder): a ``--dry-run`` plans without them, which keeps planning a 7B grid near torch's own imports.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

from tqdm import tqdm

from liftbench.backbones.timm_backbones import random_seed
from liftbench.commands.run_study import study_from_args
from liftbench.devices import is_present
from liftbench.errors import ExitCode, UsageError
from liftbench.plugin.manager import build_registry, warn_plugin_errors
from liftbench.plugin.options import resolve
from liftbench.study.plan import plan_study, record
from liftbench.study.plan import resolve as resolve_study


def _executor_options(study, executor, args) -> dict:
    """The executor's declared options the study and the flags give (cast to their types), plus --force and
    --retry-failed, which a remote executor needs when it decides what to resubmit."""
    given = dict(study.executor_options)
    options = {k: v for k, v in resolve(executor.options, given, owner=f"executor {executor.name!r}").items() if k in given}
    return {**options, "force": bool(args.force), "retry_failed": bool(args.retry_failed)}


def _dry_run(runs, registry, args, results_dir: Path) -> int:
    """Print the plan: runs, skipped pairs, what is already done, each extraction group's cost and the segmentation
    runs' training cost."""
    from liftbench.cost.estimate import estimate, render
    from liftbench.cost.estimate_seg import estimate_seg, render_seg

    done = {}
    if results_dir.is_dir():  # the runner (pyarrow, pandas) only where there are result files to read
        from liftbench.run.runner import existing_statuses

        done = existing_statuses(results_dir, log=print)
    done = {} if args.force else done
    todo = [r for r in runs if r.key not in done or (args.retry_failed and done[r.key] == "failed")]
    skipped = [r for r in todo if r.skip_reason]
    print(f"plan: {len(runs)} runs; {len(runs) - len(todo)} already in {results_dir}/, {len(skipped)} skipped pairs, "
          f"{len(todo) - len(skipped)} to run")  # fmt: skip
    for reason in sorted({r.skip_reason for r in skipped}):
        print(f"  skipped: {reason}")
    from liftbench.cost.estimate_memory import plan_runs, render_memory

    memory = plan_runs(registry, todo)  # on the meta device: no device needed, nothing allocated
    if memory:
        print(render_memory(memory) + "\n")
    if not is_present(args.device):  # a study for a GPU cluster, planned on its login node
        print(f"(no {args.device} device on this machine: no cost estimate; the runs above are what would run there)")
        return ExitCode.OK
    rates: dict = {}  # the lifting calibrations, shared by both tables
    print(render(estimate(registry, todo, device=args.device, data_root=args.data_root, rates=rates), args.device))
    seg = render_seg(estimate_seg(registry, todo, device=args.device, data_root=args.data_root, rates=rates), args.device)
    if seg:
        print("\n" + seg)
    return ExitCode.OK


def _require_device(device: str, study) -> None:
    from liftbench.devices import require_present

    try:
        require_present(device, "--device")
    except UsageError as exc:
        raise UsageError(f"{exc} (the {study.executor!r} executor runs here; to plan a study for another machine, "
                         "give the executor that runs it there, e.g. --executor slurm)") from None


class _TqdmHandler(logging.Handler):
    """Log records printed between progress-bar redraws (``tqdm.write``), not through them."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record))


def _console(verbosity: int) -> None:
    """One progress bar and the summary by default; per-run details with -v, debug with -vv."""
    logger = logging.getLogger("liftbench")
    logger.handlers = [h for h in logger.handlers if not isinstance(h, _TqdmHandler)]
    if verbosity:
        logger.addHandler(_TqdmHandler())
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO if verbosity else logging.WARNING)


def run_command(args) -> int:
    _console(getattr(args, "verbose", 0))
    registry = getattr(args, "registry", None) or build_registry(args.disable_plugin)
    warn_plugin_errors(registry)
    study, demo = study_from_args(args, registry)
    study = resolve_study(study, registry)
    seeds = {random_seed(grid.weights) for grid in study.grids} - {None}  # checks random:SEED before anything runs
    executor = registry.get("executor", study.executor)
    args.device = study.device or "cpu"
    if executor.in_process:  # the runs execute here: the device must exist here, before anything runs
        _require_device(args.device, study)
    results_dir = Path(study.results)
    executor_options = _executor_options(study, executor, args)  # a mistake there is one a dry run should catch
    runs = plan_study(study, registry, args.data_root)  # reads the data and locates the weights: the slow checks last
    if args.dry_run:
        return _dry_run(runs, registry, args, results_dir)
    # executing needs the runner and the result files' stack (pyarrow, pandas); a dry run does not import them
    from liftbench.run.feature_cache import default_cache_dir
    from liftbench.run.results import check_writable
    from liftbench.run.runner import ExecutionContext, execute

    print(f"liftbench {'demo' if demo else 'study ' + repr(study.name)}: {study.description}" if study.description
          else f"liftbench study {study.name!r}")  # fmt: skip
    for seed in sorted(seeds):
        weights = next(g.weights for g in study.grids if random_seed(g.weights) == seed)
        print(f"*** RANDOM WEIGHTS (seed {seed}): the backbones are untrained (--weights {weights}); "
              "every result row records it. ***")
    check_writable(results_dir)
    record(study, results_dir)
    bar = tqdm(total=len(runs), unit="run", dynamic_ncols=True, file=sys.stderr)

    def on_done(run, status):
        bar.set_postfix_str(f"{run.spec.strategy} {run.spec.backbone} {status}")
        bar.update(1)

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
        refresh_caches=bool(args.force),
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
        + (f", {counts['running elsewhere']} left to another liftbench command computing them in that folder"
           if counts["running elsewhere"] else "")
    )
    if counts["failed"]:
        print(f"failed runs are recorded with their error in {results_dir}/; rerun them with --retry-failed")
    if counts["rerun failed"]:
        print(f"{counts['rerun failed']} rerun(s) failed; their earlier results are kept (see `liftbench status "
              f"{shlex.quote(str(results_dir))}`)")
    if not args.no_leaderboard:
        from liftbench.commands.board import print_board

        print_board([results_dir], study.leaderboard)
    return ExitCode.RUNS_FAILED if counts["failed"] or counts["rerun failed"] else ExitCode.OK
