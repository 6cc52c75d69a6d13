"""The ``local`` executor: every run in this process, in grid order (feature caches stay warm)."""

from __future__ import annotations


def execute(runs, ctx) -> None:
    for run in runs:
        ctx.run_one(run)
