"""The grid: planning dataset × backbone × strategy × protocol × seed, resuming, executing, recording.

Each run is keyed by a hash of its :class:`RunSpec`; a run whose key already has a result file in the
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from liftbench.errors import UsageError
from liftbench.lifting.planes import parse_schedule, schedule_text
from liftbench.plugin.entries import BackboneEntry, DatasetEntry, Entry, ProtocolEntry, StrategyEntry
from liftbench.plugin.options import check_declared, resolve
from liftbench.plugin.registry import Registry
from liftbench.run.context import ProtocolResult, RunContext, RunSpec
from liftbench.run.feature_cache import start_refreshing
from liftbench.run.inputs import data_fingerprint, forget, load_dataset, weights_identity
from liftbench.run.memory import RunPeakMemory
from liftbench.run.provenance import now, provenance
from liftbench.run.results import (
    check_run_file,
    check_writable,
    move_aside,
    run_files,
    write_result,
)


@dataclass
class PlannedRun:
    spec: RunSpec
    skip_reason: str = ""

    @property
    def key(self) -> str:
        return self.spec.key()


def lift_skip_reason(backbone: BackboneEntry, strategy: StrategyEntry, chosen: Sequence[str]) -> str:
    """Why ``strategy`` is not run on ``backbone`` when the grid holds strategies ``chosen`` ('' = run it)."""
    family = backbone.family
    if family not in strategy.families:
        return f"strategy {strategy.name!r} cannot lift a {family} backbone ({backbone.name}); it lifts: {', '.join(strategy.families)}"
    twin = strategy.same_as.get(family)
    if twin and twin in chosen:
        return f"{strategy.name} is identical to {twin} for a {family} backbone: run once, as {twin}"
    return ""


def _skip_reason(dataset: DatasetEntry, backbone: BackboneEntry, strategy: StrategyEntry, protocol: ProtocolEntry, strategies: Sequence[StrategyEntry]) -> str:
    reason = lift_skip_reason(backbone, strategy, [s.name for s in strategies])
    if not reason and protocol.needs_masks and not dataset.has_masks:
        reason = f"protocol {protocol.name!r} needs lesion masks, which dataset {dataset.name!r} does not provide"
    if not reason and (backbone.family, strategy.name) in protocol.refuses:
        reason = f"protocol {protocol.name!r} does not run on {strategy.name} ({backbone.family}): {protocol.refuses[backbone.family, strategy.name]}"
    if not reason and protocol.needs_labels and not dataset.has_labels:
        reason = f"protocol {protocol.name!r} needs class labels; dataset {dataset.name!r} is segmentation-only"
    return reason


DEFAULT_SIZE = 64


def size_for(dataset: DatasetEntry, size: int | None) -> int:
    """The input size of ``dataset`` in a grid: the user's, else the dataset's default (else 64), checked
    against the sizes it offers."""
    chosen = int(size) if size is not None else (dataset.default_size or DEFAULT_SIZE)
    if dataset.sizes and chosen not in dataset.sizes:
        raise UsageError(f"dataset {dataset.name!r} has no size {chosen}; valid sizes: {', '.join(map(str, dataset.sizes))}")
    return chosen


def _schedule_for(strategy: StrategyEntry, schedule: str | None) -> str:
    """The user's schedule (or the strategy's default one) for strategies that take one, else ''."""
    return (schedule or strategy.schedule) if strategy.schedule else ""


def options_per_protocol(protocols: Sequence[ProtocolEntry], options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each protocol's resolved options: its declared defaults (and ``quick`` preset), overridden by the
    given options it declares, cast to their types. These key its runs, so a changed default reruns
    them. An option no selected protocol declares is a user mistake, caught before anything runs."""
    check_declared(options, {name for p in protocols for name in p.options}, f"protocol(s) {', '.join(p.name for p in protocols)}")
    return {
        p.name: resolve(p.options, {k: v for k, v in options.items() if k in p.options or k == "quick"}, owner=f"protocol {p.name!r}", quick=p.quick)
        for p in protocols
    }


def dataset_parameters(dataset: DatasetEntry, given: dict[str, Any]) -> dict[str, Any]:
    """The dataset options a user set that ``dataset`` declares, cast to their types (all, as text, for a
    dataset that declares none)."""
    if dataset.parameters is None:
        return dict(given)
    mine = {k: v for k, v in given.items() if k in dataset.parameters}
    return {k: v for k, v in resolve(dataset.parameters, mine, owner=f"dataset {dataset.name!r}").items() if k in mine}


def check_dataset_options(datasets: Sequence[DatasetEntry], given: dict[str, Any]) -> None:
    """A dataset option no selected dataset declares is a user mistake (like a protocol option); one that
    some declare applies to those (``featdice_size`` to LIDC in a LIDC + MMWHS grid)."""
    if any(d.parameters is None for d in datasets):
        return
    declared = {name for d in datasets for name in d.parameters}
    check_declared(given, declared, f"dataset(s) {', '.join(d.name for d in datasets)}", what="dataset option")


def _dtype_used(ctx: RunContext) -> dict[str, str]:
    """``{"dtype": ...}``: the precision the run actually used (``auto`` resolved), for its notes."""
    options = ctx.options
    return {"dtype": options["dtype"]} if "dtype" in options else {}


def providers(**entries: Entry) -> str:
    """JSON of kind -> providing plugin and version: recorded in rows, and part of the run key, so a
    plugin upgrade reruns what it provides."""
    return json.dumps({kind: entry.provider for kind, entry in entries.items()}, sort_keys=True)


def plan(
    registry: Registry,
    *,
    datasets: Sequence[Entry],
    backbones: Sequence[Entry],
    strategies: Sequence[Entry],
    protocols: Sequence[Entry],
    seeds: Sequence[int],
    size: int | None,
    weights: str,
    schedule: str | None = None,
    options: dict[str, Any] | None = None,
    dataset_options: dict[str, Any] | None = None,
    data_root: str | None = None,
) -> list[PlannedRun]:
    """Every run of the grid, in an order that keeps caches warm (seeds innermost). ``size`` None: each
    dataset's default size. Every dataset is loaded and every weights file located here, so a run is keyed by
    what its inputs hold (:mod:`liftbench.run.inputs`) and a missing or bad file stops the plan before any run."""
    sched = schedule_text(parse_schedule(schedule)) if schedule else None
    per_protocol = {name: json.dumps(opts, sort_keys=True) for name, opts in options_per_protocol(protocols, options or {}).items()}
    check_dataset_options(datasets, dataset_options or {})
    data_params = {d.name: dataset_parameters(d, dataset_options or {}) for d in datasets}
    data_opts = {name: json.dumps(params, sort_keys=True) for name, params in data_params.items()}
    sizes = {dataset.name: size_for(dataset, size) for dataset in datasets}
    weights_ids = {backbone.name: weights_identity(backbone, weights) for backbone in backbones}
    forget("dataset")  # the data as it is now, not as an earlier plan in this process read it
    data_ids = {d.name: data_identity(d, sizes[d.name], data_root, data_params[d.name]) for d in datasets}
    runs = []
    for dataset in datasets:
        for backbone in backbones:
            for strategy in strategies:
                for protocol in protocols:
                    reason = _skip_reason(dataset, backbone, strategy, protocol, strategies)
                    provided = providers(strategy=strategy, backbone=backbone, dataset=dataset, protocol=protocol)
                    for seed in seeds:
                        spec = RunSpec(
                            dataset=dataset.name, size=sizes[dataset.name], backbone=backbone.name, weights=weights,
                            strategy=strategy.name, schedule=_schedule_for(strategy, sched),
                            protocol=protocol.name, seed=int(seed), options=per_protocol[protocol.name],
                            dataset_options=data_opts[dataset.name],
                            providers=provided, data=data_ids[dataset.name], weights_id=weights_ids[backbone.name],
                        )
                        runs.append(PlannedRun(spec, reason))
    return runs


def data_identity(dataset: DatasetEntry, size: int, data_root: str | None, params: dict[str, Any]) -> str:
    """The data fingerprint of ``dataset`` as a run would load it (the load is kept for the first runs)."""
    return data_fingerprint(load_dataset(dataset, size, data_root, params))


def group_key(spec) -> tuple:
    """What a feature cache depends on: runs with the same key share one extraction (one Slurm array task,
    one group of the dry-run estimate)."""
    return (spec.dataset, spec.size, spec.dataset_options, spec.data, spec.backbone, spec.weights, spec.weights_id,
            spec.strategy, spec.schedule)  # fmt: skip


def group_runs(runs: Sequence[PlannedRun]) -> list[list[PlannedRun]]:
    """Runs grouped by :func:`group_key`, groups and runs in grid order."""
    groups: dict[tuple, list] = {}
    for run in runs:
        groups.setdefault(group_key(run.spec), []).append(run)
    return list(groups.values())


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

    def _base_row(self, spec: RunSpec, key: str) -> dict[str, Any]:
        backbone = self.registry.get("backbone", spec.backbone)
        return {
            "run_key": key, "kind": "run", "source": "measured", "citation": "",
            "dataset": spec.dataset, "input_size": spec.size, "backbone": spec.backbone,
            "backbone_model": backbone.architecture,
            "weights": spec.weights, "weights_sha256": "", "strategy": spec.strategy, "schedule": spec.schedule,
            "pooling": self.registry.get("strategy", spec.strategy).pooling, "providers": spec.providers,
            "backbone_mode": "eval", "protocol": spec.protocol,
            "seed": spec.seed, "options": spec.options, "dataset_options": spec.dataset_options,
            "data_fingerprint": spec.data, "created_at": now(), **provenance(self.device),
        }

    def run_one(self, run: PlannedRun) -> str:
        """Execute one run and write its result file; returns its status (ok | skipped | failed)."""
        spec, key = run.spec, run.key
        base = self._base_row(spec, key)
        if run.skip_reason:
            return self._finish(run, [{**base, "status": "skipped", "error": run.skip_reason}], None)
        ctx = RunContext(spec, self.registry, self.cache_dir, self.device, self.data_root, self.log, self.refresh_caches)
        start = time.perf_counter()
        try:
            with RunPeakMemory(self.device) as peak:
                result: ProtocolResult = self.registry.get("protocol", spec.protocol).load()(ctx)
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
        failure, ``scancel``, a worker that crashed), so ``--retry-failed`` finds it."""
        self.log(f"FAILED {run.spec.label()}: {reason.splitlines()[0] if reason else ''}")
        return self._finish(run, [{**self._base_row(run.spec, run.key), "status": "failed", "error": reason}], None, attempt=False)

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
