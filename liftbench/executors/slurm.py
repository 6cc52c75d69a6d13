"""The ``slurm`` executor: the grid as Slurm array jobs, submitted through submitit.

Design
------
* **One array task per feature-cache group.** Runs that share a dataset, size, dataset options,
  backbone, weights, strategy and schedule share everything expensive: the data, the model and the
  lifted backbone's frozen features (the linear probe's cache key). They form one group, and one
  group is one task of a Slurm job array; its protocols and seeds run in order inside that task.
  So the features are extracted once per group, never twice at the same time by two jobs, and a task
  pays Python/torch start-up once for all its seeds. A full study (6 datasets × 4 backbones ×
  5 strategies) is an array of about 120 tasks; ``--slurm-array-parallelism`` caps how many run at
  once. A run the grid skips (ACS on a ViT) needs no job: the driver records it at once.
* **Workers are plain runs.** A task rebuilds the registry from the installed plugins
  (``build_registry(disabled)``) and an :class:`~liftbench.runner.ExecutionContext` from plain data
  (paths, device, run specs): nothing unpicklable is sent. It calls ``ctx.run_one(run)`` exactly as the
  local executor does, so each result file is written atomically into the shared results folder:
  a run is done exactly when its file appears, whoever is watching. A run that raises is recorded
  as ``failed`` with its traceback and the task's log path, and the task goes on with the next run.
* **Tracking.** After submitting, the driver writes ``<results>/.jobs/<run_key>.json`` (job id,
  array index, submit time, log paths, the run's spec), atomically. It then watches: a run counts
  as finished when its result file appears; Slurm (``squeue``, then ``sacct``) is asked every
  ``LIFTBENCH_SLURM_POLL`` seconds (default 15) whether the jobs still live. Stopping the driver
  stops nothing on the cluster. Running the same command again asks Slurm about the recorded jobs:
  a run still queued or running is watched again, never resubmitted; a run whose job ended without
  its result is recorded as failed (as if the driver had seen it end); the rest is submitted.
* **Failures.** A job that ends without a run's result (``scancel``, time limit, node failure,
  out of memory, a crashed worker) makes the driver write a ``failed`` row with Slurm's state, exit
  code, the log path and the log's last lines. A worker that Slurm signals records the run it was in
  and the ones it will not reach as failed at once: USR2 (submitit asks for it 90 s before the time
  limit) as "time limit", TERM (``scancel``, the limit itself, preemption) as "stopped" — submitit
  would ignore TERM and let the run go on until the SIGKILL. ``--retry-failed`` resubmits failed
  runs; the group's finished runs keep their results. If the driver is killed between ``sbatch`` and writing the records, a rerun submits
  those runs again: the work is repeated, but each run still has exactly one result file.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from liftbench.errors import UsageError
from liftbench.executors.slurm_jobs import (
    UNKNOWN_GRACE_S,
    _age_s,
    ended_reason,
    job_states,
    jobs_dir,
    read_record,
    write_json_atomic,
)
from liftbench.results import run_path, run_status

DEFAULT_TIME = 60  # minutes; submitit's own default (5) is too short for a real run
MAX_ARRAY = 1000  # Slurm's default MaxArraySize is 1001


# --------------------------------------------------------------------------- options -> sbatch


def parse_time(text: str | int | None) -> int | str:
    """``--slurm-time``: minutes (``90``) or Slurm's ``[D-]HH:MM[:SS]`` / ``MM:SS``."""
    if text is None or text == "":
        return DEFAULT_TIME
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    if re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", text):
        return text
    raise UsageError(f"invalid --slurm-time {text!r}: give minutes (90) or [D-]HH:MM:SS (1-12:00:00)")


def parse_extra(items: Iterable[str] | None) -> dict[str, Any]:
    """``--slurm-extra`` values (``constraint=a100``, ``--exclusive``, ``#SBATCH --gres=gpu:1``) as
    submitit's ``additional_parameters``: each becomes one ``#SBATCH --key[=value]`` line."""
    params: dict[str, Any] = {}
    for item in items or []:
        text = item.strip()
        if text.startswith("#SBATCH"):
            text = text[len("#SBATCH") :].strip()
        text = text.lstrip("-")
        if "=" not in text and " " in text:
            text = "=".join(text.split(None, 1))
        key, sep, value = text.partition("=")
        if not key.strip() or " " in key.strip():
            raise UsageError(f"--slurm-extra takes an sbatch option such as constraint=a100 or --exclusive, got {item!r}")
        params[key.strip()] = value.strip() if sep else True
    return params


def _positive_int(options: dict, name: str) -> int | None:
    value = options.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or (number == 0 and name != "gpus"):
        raise UsageError(f"invalid --slurm-{name.replace('_', '-')} {value!r}: give a whole number")
    return number


def slurm_parameters(options: dict[str, Any]) -> dict[str, Any]:
    """submitit ``SlurmExecutor.update_parameters`` keywords from the ``--slurm-*`` options."""
    params: dict[str, Any] = {"job_name": "liftbench", "time": parse_time(options.get("time")), "nodes": 1, "ntasks_per_node": 1}
    for name, key in (("partition", "partition"), ("mem", "mem"), ("account", "account"), ("qos", "qos")):
        if options.get(name):
            params[key] = str(options[name])
    for name, key in (("gpus", "gpus_per_node"), ("cpus", "cpus_per_task"), ("array_parallelism", "array_parallelism")):
        value = _positive_int(options, name)
        if value:
            params[key] = value
    extra = parse_extra(options.get("extra"))
    if extra:
        params["additional_parameters"] = extra
    return params


# --------------------------------------------------------------------------- grouping


def group_key(spec) -> tuple:
    """What a feature cache depends on: runs with the same key share one array task."""
    return (spec.dataset, spec.size, spec.dataset_options, spec.backbone, spec.weights, spec.strategy, spec.schedule)


def group_runs(runs: Sequence) -> list[list]:
    """Runs grouped by :func:`group_key`, groups and runs in grid order."""
    groups: dict[tuple, list] = {}
    for run in runs:
        groups.setdefault(group_key(run.spec), []).append(run)
    return list(groups.values())


# --------------------------------------------------------------------------- the worker


class _Stopped(BaseException):
    """Raised in the worker by Slurm's signals (passes through ``run_one``, which catches Exception):
    USR2, which submitit asks for 90 s before the time limit, and TERM (``scancel``, the time limit,
    preemption), which submitit would ignore, letting the run go on until the SIGKILL."""

    REASONS = {
        signal.SIGUSR2: "the Slurm job reached its time limit before this run finished; raise --slurm-time",
        signal.SIGTERM: "Slurm stopped the job (SIGTERM: scancel, time limit or preemption) before this run finished",
    }

    def __init__(self, signum: int):
        super().__init__(self.REASONS.get(signum, f"signal {signum}"))


def _own_log_path() -> str:
    try:
        import submitit

        return str(submitit.JobEnvironment().paths.stdout)
    except Exception:
        return ""


def run_group(payload: dict) -> dict[str, str]:
    """One array task: the runs of one group, in order, in this process. Returns key → status."""
    from liftbench.plugins import build_registry
    from liftbench.protocols.context import RunSpec
    from liftbench.runner import ExecutionContext, PlannedRun

    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit():
        import torch

        torch.set_num_threads(int(cpus))
    log_path = _own_log_path()
    disabled = tuple(payload.get("disabled_plugins", ()))

    def say(message: str) -> None:
        print(message, flush=True)

    ctx = ExecutionContext(
        registry=build_registry(disabled),
        results_dir=Path(payload["results_dir"]),
        cache_dir=Path(payload["cache_dir"]),
        device=payload.get("device", "cpu"),
        data_root=payload.get("data_root"),
        log=say,
        disabled_plugins=disabled,
        failure_note=f"\nlog: {log_path}" if log_path else "",
    )
    runs = [PlannedRun(RunSpec(**spec)) for spec in payload["runs"]]
    done = {}
    if payload.get("skip_done", True):  # only this task's runs: never a scan of the shared folder
        for run in runs:
            path = run_path(ctx.results_dir, run.key)
            try:
                done[run.key] = run_status(path)[0] if path.exists() else None
            except Exception:
                continue  # unreadable: run it again
        done = {key: status for key, status in done.items() if status}

    def on_signal(signum, frame):
        raise _Stopped(signum)

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGUSR2, signal.SIGTERM):
            signal.signal(signum, on_signal)
    say(f"liftbench: {len(runs)} run(s) on {socket.gethostname()} (pid {os.getpid()}), results -> {ctx.results_dir}")
    statuses: dict[str, str] = {}
    for index, run in enumerate(runs):
        if done.get(run.key) in ("ok", "skipped"):
            statuses[run.key] = done[run.key]  # submitted twice: the other copy did it
            continue
        say(f"liftbench: start {run.spec.label()} ({run.key})")
        try:
            statuses[run.key] = ctx.run_one(run)
        except _Stopped as stop:
            for signum in (signal.SIGUSR2, signal.SIGTERM):  # record in peace: the job is ending anyway
                signal.signal(signum, signal.SIG_IGN)
            note = f"{stop}\nlog: {log_path}"
            for left in runs[index:]:
                statuses[left.key] = ctx.record_failure(left, note)
            break
        except Exception as exc:  # a user mistake (missing data file) too: record it, do the other runs
            statuses[run.key] = ctx.record_failure(run, f"{type(exc).__name__}: {exc}\nlog: {log_path}")
        say(f"liftbench: {statuses[run.key]} {run.spec.label()}")
    return statuses


# --------------------------------------------------------------------------- the driver


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _stat(path: Path):
    try:
        st = path.stat()
        return (st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        return None


def _result(path: Path) -> tuple[str, str]:
    """(status, error) of a result file; an unreadable one counts as failed."""
    try:
        return run_status(path)
    except Exception:
        return "failed", f"unreadable result file {path}"


def _poll_interval(options: dict) -> float:
    value = options.get("poll") or os.environ.get("LIFTBENCH_SLURM_POLL") or 15
    try:
        return max(0.2, float(value))
    except ValueError:
        return 15.0


def _submit(groups: list[list], ctx, options: dict, results_dir: Path, logs: Path) -> list[tuple[Any, dict]]:
    """Submit one array task per group; write a record per run. Returns (run, record) pairs."""
    import submitit

    executor = submitit.SlurmExecutor(folder=logs, max_num_timeout=0)
    try:
        executor.update_parameters(**slurm_parameters(options))
    except ValueError as exc:
        raise UsageError(f"invalid Slurm options: {exc}") from None
    payload_base = {
        "results_dir": str(results_dir),
        "cache_dir": str(Path(ctx.cache_dir).absolute()),
        "device": ctx.device,
        "data_root": str(Path(ctx.data_root).absolute()) if ctx.data_root else None,
        "disabled_plugins": list(ctx.disabled_plugins),
        "skip_done": not options.get("force", False),
    }
    submitted = []
    for start in range(0, len(groups), MAX_ARRAY):
        chunk = groups[start : start + MAX_ARRAY]
        payloads = [{**payload_base, "runs": [asdict(run.spec) for run in group]} for group in chunk]
        try:
            jobs = executor.map_array(run_group, payloads)
        except Exception as exc:
            raise UsageError(f"sbatch refused the jobs: {str(exc).strip()[-2000:]}") from None
        when = _now()
        for job, group in zip(jobs, chunk, strict=True):
            array_id, _, index = str(job.job_id).partition("_")
            for run in group:
                record = {
                    "run_key": run.key, "label": run.spec.label(), "spec": asdict(run.spec), "executor": "slurm",
                    "job_id": str(job.job_id), "array_job_id": array_id, "array_index": int(index or 0),
                    "submitted_at": when, "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
                    "group": [r.key for r in group], "host": socket.gethostname(),
                }
                write_json_atomic(jobs_dir(results_dir) / f"{run.key}.json", record)
                submitted.append((run, record))
        ctx.log(f"slurm: submitted {sum(len(g) for g in chunk)} run(s) as {len(chunk)} array task(s) of job {jobs[0].job_id.split('_')[0]}; logs in {logs}")
    return submitted


def execute(runs, ctx) -> None:
    """Submit what needs running, then watch until every run has its result or its job has ended."""
    options = dict(ctx.executor_options)
    if runs and not shutil.which("sbatch"):
        raise UsageError("--executor slurm needs Slurm's sbatch on PATH: run liftbench on a cluster login node")
    results_dir = Path(ctx.results_dir).absolute()
    logs = Path(options["logs"]).absolute() if options.get("logs") else jobs_dir(results_dir) / "logs"
    poll = _poll_interval(options)
    if _positive_int(options, "gpus") and not str(ctx.device).startswith("cuda"):
        ctx.log("slurm: warning: the jobs get GPUs (--slurm-gpus) but run on --device cpu; add --device cuda")

    for run in runs:  # a run the grid skips needs no job
        if run.skip_reason:
            ctx.run_one(run)
    remote = [run for run in runs if not run.skip_reason]
    if not remote:
        return

    # what is already on the cluster?
    records = {run.key: read_record(results_dir, run.key) for run in remote}
    states = job_states(rec["job_id"] for rec in records.values() if rec and rec.get("job_id"))
    watch: list[tuple[Any, dict]] = []
    to_submit = []
    for run in remote:
        record = records[run.key]
        state = states.get(record.get("job_id", "")) if record else None
        if record and (state is not None and state.phase != "ended" or state is None and _age_s(record) < UNKNOWN_GRACE_S):
            watch.append((run, record))  # still queued or running: never submit it twice
        elif record and not run_path(results_dir, run.key).exists() and not options.get("retry_failed"):
            ctx.record_failure(run, ended_reason(record, state))  # ended while nobody watched
        else:
            to_submit.append(run)
    if watch:
        jobs = sorted({rec["job_id"].split("_")[0] for _, rec in watch})
        ctx.log(f"slurm: {len(watch)} run(s) already queued or running (job {', '.join(jobs)}); watching them, not resubmitting")
    baseline = {run.key: _stat(run_path(results_dir, run.key)) for run in remote}  # a result counts once it changes
    try:
        if to_submit:
            watch += _submit(group_runs(to_submit), ctx, options, results_dir, logs)
        _watch(dict((run.key, (run, record)) for run, record in watch), baseline, ctx, results_dir, poll)
    except KeyboardInterrupt:
        records = {run.key: read_record(results_dir, run.key) for run in remote if _stat(run_path(results_dir, run.key)) == baseline[run.key]}
        records = {key: rec for key, rec in records.items() if rec and rec.get("job_id")}
        jobs = sorted({rec["job_id"].split("_")[0] for rec in records.values()})
        print(
            f"\nliftbench: stopped watching; {len(records)} run(s) stay queued or running on the cluster (job {', '.join(jobs) or '?'}). "
            f"`liftbench status {ctx.results_dir}` shows them; the same `liftbench run` command gathers them without resubmitting.",
            file=sys.stderr,
        )
        raise


def _watch(pending: dict[str, tuple[Any, dict]], baseline: dict, ctx, results_dir: Path, poll: float) -> None:
    """Until every pending run has a new result file or has been recorded as failed (its job ended)."""
    ended_at: dict[str, float] = {}
    last_query, last_summary = 0.0, ""
    while pending:
        for key in list(pending):
            path = run_path(results_dir, key)
            if _stat(path) is not None and _stat(path) != baseline.get(key):
                run, record = pending.pop(key)
                status, error = _result(path)
                if status == "failed":
                    ctx.log(f"FAILED {run.spec.label()}: {error.splitlines()[0] if error else ''} (log: {record.get('stdout')})")
                ctx.counts[status] += 1
                ctx.on_done(run, status)
        if pending and time.monotonic() - last_query >= poll:
            last_query = time.monotonic()
            states = job_states({rec["job_id"] for _, rec in pending.values()})
            phases = Counter()
            for key in list(pending):
                run, record = pending[key]
                state = states.get(record["job_id"])
                phase = state.phase if state else ("queued" if _age_s(record) < UNKNOWN_GRACE_S else "ended")
                phases[phase] += 1
                if phase != "ended":
                    ended_at.pop(record["job_id"], None)
                    continue
                first_seen = ended_at.setdefault(record["job_id"], time.monotonic())
                if time.monotonic() - first_seen < min(poll, 5.0) * 1.5:
                    continue  # let a result written as the job ended land first
                path = run_path(results_dir, key)
                if _stat(path) is not None and _stat(path) != baseline.get(key):
                    continue  # arrived just now: counted on the next pass
                pending.pop(key)
                ctx.record_failure(run, ended_reason(record, state))
            summary = ", ".join(f"{n} {p}" for p, n in sorted(phases.items()))
            if summary and summary != last_summary:
                ctx.log(f"slurm: {summary}")
                last_summary = summary
        if pending:
            time.sleep(min(1.0, poll))
