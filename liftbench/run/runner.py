"""Executing planned runs: resuming, running each protocol, recording its rows by the one write rule.

Planning is the study stage's (:mod:`liftbench.study.grid_runs`). Each run is keyed by a hash of its :class:`RunSpec`; a run whose key already has a result file in the
results folder is not run again (unless ``force``), so an interrupted study resumes where it stopped.
A run writes exactly one Parquet file, atomically. Only a pair known *before running* to be impossible
(ACS on a ViT, a mask protocol on a dataset without masks) is recorded as ``skipped`` with the reason;
anything raised while a run executes — a lifter that gives up, an undefined validation metric, a bug —
is ``failed`` with the error, the grid goes on and the command exits 1. No failure passes as a skip.
"""

from __future__ import annotations

import json
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from liftbench.errors import UsageError
from liftbench.plugin.entries import Entry
from liftbench.plugin.registry import Registry
from liftbench.run.context import ProtocolResult, RunContext
from liftbench.run.feature_cache import start_refreshing
from liftbench.run.memory import RunPeakMemory
from liftbench.run.provenance import now, provenance
from liftbench.run.results import (
    COLUMNS,
    check_run_file,
    check_writable,
    move_aside,
    run_files,
    write_result,
)
from liftbench.run.spec import PlannedRun


def _dtype_used(ctx: RunContext) -> dict[str, str]:
    """``{"dtype": ...}``: the precision the run actually used (``auto`` resolved), for its notes."""
    options = ctx.options
    return {"dtype": options["dtype"]} if "dtype" in options else {}


def existing_statuses(results_dir: Path, *, log: Callable[[str], None] | None = None, move: bool = False) -> dict[str, str]:
    """Run key → status of every complete result file directly in ``results_dir``. A file that cannot be read
    or fails the schema is not a result: it is reported through ``log`` and, with ``move``, moved aside to
    ``.unreadable/`` (never deleted), so its run is done again."""
    statuses = {}
    for path in run_files(results_dir):
        try:
            statuses[path.stem] = check_run_file(path)
        except Exception as exc:
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
            where = f"; moved to {move_aside(path)}" if move else ""
            if log:
                log(f"result file {path} is not a complete result ({why}){where}; its run will be done again")
    return statuses


@dataclass
class ExecutionContext:
    """What an executor needs: ``run_one(run)`` executes one run wherever it is called."""

    registry: Registry
    results_dir: Path
    cache_dir: Path
    device: str = "cpu"
    data_root: str | None = None
    log: Callable[[str], None] = print
    on_done: Callable[[PlannedRun, str], None] = lambda run, status: None
    counts: Counter = field(default_factory=Counter)
    executor_options: dict[str, Any] = field(default_factory=dict)  # e.g. the slurm executor's --slurm-* values
    disabled_plugins: tuple[str, ...] = ()  # so a remote worker rebuilds the same registry
    failure_note: str = ""  # appended to a failed run's error (a worker's log path)
    refresh_caches: bool = False  # --force: features are extracted afresh, not read from the cache

    def base_row(self, run: PlannedRun) -> dict[str, Any]:
        """The columns every row of ``run`` shares, from its plan (never a registry lookup) and the provenance of
        this process; a run that came as its spec alone (a worker's) is resolved once, here."""
        spec, resolved = run.spec, run.resolve(self.registry)
        return {
            "run_key": run.key, "kind": "run", "source": "measured", "citation": "",
            "dataset": spec.dataset, "input_size": spec.size, "backbone": spec.backbone,
            "backbone_model": resolved.backbone.architecture,
            "weights": spec.weights, "weights_sha256": "", "strategy": spec.strategy, "schedule": spec.schedule,
            "pooling": resolved.strategy.pooling, "providers": spec.providers,
            "backbone_mode": "eval", "protocol": spec.protocol,
            "seed": spec.seed, "options": spec.options, "dataset_options": spec.dataset_options,
            "data_fingerprint": spec.data, "created_at": now(), **provenance(self.device),
        }

    def run_one(self, run: PlannedRun) -> str:
        """Execute one run and write its result file; returns its status (ok | skipped | failed)."""
        spec = run.spec
        base = self.base_row(run)
        if run.skip_reason:
            return self._finish(run, [{**base, "status": "skipped", "error": run.skip_reason}], None)
        ctx = RunContext(spec, self.registry, self.cache_dir, self.device, self.data_root, self.log, self.refresh_caches,
                         resolved=run.resolved)  # fmt: skip
        start = time.perf_counter()
        try:
            with RunPeakMemory(self.device) as peak:
                result: ProtocolResult = run.resolved.protocol.load()(ctx)
        except UsageError:
            raise  # a user mistake (missing file, bad option) stops the grid with a clear message
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.log(f"FAILED {spec.label()}: {detail}")
            row = {**base, "status": "failed", "error": f"{detail}\n{traceback.format_exc(limit=-3)}{self.failure_note}"}
            return self._finish(run, [row], None)
        wall = time.perf_counter() - start
        _, weights = ctx.backbone()
        base.update(
            weights=weights.source, weights_sha256=weights.sha256, wall_seconds=wall,
            peak_memory_mb=peak.mb, volumes_per_second=result.volumes_per_second, selected_on=result.selected_on,
            backbone_mode=result.notes.get("backbone_mode", "eval"),
            notes=json.dumps({**_dtype_used(ctx), **result.notes}, sort_keys=True, default=str),
        )
        rows = [{**base, "split": split, "metric": metric, "value": value, "status": "ok"} for split, metric, value in result.metrics]
        return self._finish(run, rows, result)

    def record_failure(self, run: PlannedRun, reason: str) -> str:
        """Record ``run`` as failed with ``reason`` without running it (its job died: time-out, node
        failure, ``scancel``, a worker that crashed), so ``--retry-failed`` finds it. Where the full row cannot
        be built (a stop signal broke an import that provenance needs) the row holds what the spec says."""
        try:
            base = self.base_row(run)
        except Exception:
            base = bare_row(run)
        status = self._finish(run, [{**base, "status": "failed", "error": reason}], None, attempt=False)
        if status == "failed":
            self.log(f"FAILED {run.spec.label()}: {reason.splitlines()[0] if reason else ''}")
        return status

    def _finish(self, run: PlannedRun, rows: list[dict], result: ProtocolResult | None, attempt: bool = True) -> str:
        """Write the run's rows by the one write rule (:func:`~liftbench.run.results.write_result`): ok replaces,
        failed never replaces ok. A failure that met a kept result counts as ``rerun failed`` (the command
        exits 1) and is kept in ``.attempts/`` for ``liftbench status``; ``attempt=False`` (a failure recorded
        without running: a job that ended) that meets a kept result is no failure at all."""
        probabilities = None
        if result is not None and result.probabilities is not None:
            probabilities = pa.Table.from_pandas(result.probabilities, preserve_index=False)
        status = write_result(self.results_dir, run.key, rows, attempt=attempt, probabilities=probabilities)
        if rows[0]["status"] == "failed" and status != "failed" and attempt:
            first = (rows[0].get("error") or "").strip().splitlines()
            self.log(f"{run.spec.label()}: kept the {status} result that is already there, not this failure"
                     + (f" ({first[0]})" if first else ""))
            self.counts["rerun failed"] += 1
        else:
            self.counts[status] += 1
        self.on_done(run, status)
        return status


def bare_row(run: PlannedRun) -> dict[str, Any]:
    """A failed run's row from its spec alone (no registry, no provenance)."""
    spec = run.spec
    fields_ = {k: v for k, v in asdict(spec).items() if k in COLUMNS}
    return {**fields_, "data_fingerprint": spec.data, "run_key": run.key, "kind": "run", "source": "measured",
            "input_size": spec.size, "created_at": now()}  # fmt: skip


def execute(runs: list[PlannedRun], executor: Entry, ctx: ExecutionContext, *, force: bool = False, retry_failed: bool = False) -> list[PlannedRun]:
    """Run what has no result yet (all with ``force``; failed ones too with ``retry_failed``)."""
    check_writable(ctx.results_dir)
    start_refreshing()
    statuses = existing_statuses(ctx.results_dir, log=ctx.log, move=True)
    statuses = {} if force else statuses
    todo = [r for r in runs if r.key not in statuses or (retry_failed and statuses[r.key] == "failed")]
    ctx.counts["already done"] = len(runs) - len(todo)
    executor.load()(todo, ctx)
    return todo
