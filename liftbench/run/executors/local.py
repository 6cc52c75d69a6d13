"""The ``local`` executor: every run in this process, in grid order (feature caches stay warm).

Each run is claimed first (:mod:`liftbench.run.executors.claim`): a run another command is computing in the same
results folder is left to it, and a run another command finished since the plan was made is not redone
(unless ``--force``)."""

from __future__ import annotations

from liftbench.run.executors.claim import claimed
from liftbench.run.results import DONE, result_status, run_path


def execute(runs, ctx) -> None:
    force = bool(ctx.executor_options.get("force"))
    retry = bool(ctx.executor_options.get("retry_failed"))
    for run in runs:
        with claimed(ctx.results_dir, run.key) as mine:
            if not mine:
                ctx.log(f"{run.spec.label()}: being computed by another liftbench command in this folder; left to it")
                ctx.counts["running elsewhere"] += 1
                ctx.on_done(run, "running elsewhere")
                continue
            status = None if force else result_status(run_path(ctx.results_dir, run.key))
            if status in DONE or (status == "failed" and not retry):
                ctx.counts["already done"] += 1  # finished by another command since the plan was made
                ctx.on_done(run, status)
                continue
            ctx.run_one(run)
