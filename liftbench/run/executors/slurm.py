"""The ``slurm`` executor: the grid as Slurm array jobs, submitted through submitit.

One array task per feature-cache group (the runs that share data, backbone, weights, strategy and schedule,
so their features are extracted once), workers that are plain runs writing their result files atomically
into the shared results folder, and a driver that claims, submits, watches and records failures without
ever submitting a run twice. The rules it keeps — and why — are written once, in ``docs/cluster.md``; the
job records, locks and Slurm queries they rest on are :mod:`liftbench.run.executors.slurm_jobs`.
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
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from liftbench.errors import UsageError
from liftbench.run.executors.slurm_jobs import (
    DONE,
    RESOLVE_GRACE_S,
    DriverLock,
    _age_s,
    driver_alive,
    driver_text,
    ended_reason,
    find_submission,
    folder_lock,
    forget_driver,
    jobs_dir,
    log_lines,
    now_iso,
    query_jobs,
    read_record,
    record_path,
    result_status,
    unknown_timeout,
    write_record,
)
from liftbench.run.executors.slurm_worker import (  # the worker side, re-exported for callers of this module
    _StopWatch,  # noqa: F401
    run_group,
    write_failed,  # noqa: F401
)
from liftbench.run.results import run_path, run_status
from liftbench.run.spec import group_runs

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




# --------------------------------------------------------------------------- the driver


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


def _jobs_text(job_ids: Iterable[str]) -> str:
    return ", ".join(sorted({str(j).split("_")[0] for j in job_ids if j}, key=lambda j: (len(j), j))) or "?"


@dataclass(eq=False)
class _Tracked:
    """A run this driver waits for."""

    run: Any
    record: dict | None
    baseline: tuple | None  # the result file as it was when the run was claimed: a change is its result
    mine: bool = True  # False: another live driver watches it (this one only waits for its result)
    rerun: bool = False  # --force / --retry-failed: submit again once its recorded job is over
    phase: str = ""
    unknown_since: float | None = None
    ended_since: float | None = None

    @property
    def job_id(self) -> str:
        return (self.record or {}).get("job_id") or ""


class _Driver:
    """Claims, submits and watches the runs of one ``liftbench run --executor slurm``."""

    def __init__(self, ctx, options: dict, results_dir: Path, logs: Path, poll: float, lock: DriverLock):
        self.ctx = ctx
        self.options, self.results_dir, self.logs, self.poll, self.lock = options, results_dir, logs, poll, lock
        self.rerun = bool(options.get("force") or options.get("retry_failed"))
        self.pending: dict[str, _Tracked] = {}
        self.to_submit: list[_Tracked] = []
        self.plans: list[tuple[str, list[list[_Tracked]]]] = []  # (job name, groups): written, not yet sbatch'ed
        self.told_unknown: set[str] = set()
        self.told_problems = ""
        self.last_summary = ""

    def log(self, message: str) -> None:
        self.ctx.log(message)

    def _count(self, run, status: str) -> None:
        self.ctx.counts[status] += 1
        self.ctx.on_done(run, status)

    # ---------------------------------------------------------------- claiming

    def claim(self, runs: Sequence) -> None:
        """Under the folder lock: count runs finished meanwhile, leave runs another live driver watches
        to it, take over the others, and write ``submitting`` records for those to submit."""
        force, retry = self.options.get("force"), self.options.get("retry_failed")
        foreign: dict[str, tuple[dict, list]] = {}
        taken: dict[str, tuple[dict, int]] = {}
        alive: dict[str, bool] = {}
        with folder_lock(self.results_dir, self.log):
            for run in runs:
                path = run_path(self.results_dir, run.key)
                baseline = _stat(path)
                status = result_status(path) if baseline else None
                if not force and (status in DONE or (status == "failed" and not retry)):
                    self._count(run, status)  # it finished since the runner listed the folder
                    continue
                record = read_record(self.results_dir, run.key)
                tracked = _Tracked(run, record, baseline, rerun=self.rerun)
                self.pending[run.key] = tracked
                owner = (record or {}).get("driver") or {}
                if record and owner.get("id") and not self.lock.owns(record):
                    if owner["id"] not in alive:
                        alive[owner["id"]] = driver_alive(self.results_dir, owner)
                    if alive[owner["id"]]:
                        tracked.mine = False
                        foreign.setdefault(owner["id"], (owner, []))[1].append(tracked)
                        continue
                    taken.setdefault(owner["id"], (owner, 0))
                    taken[owner["id"]] = (owner, taken[owner["id"]][1] + 1)
                if record:
                    record["driver"] = self.lock.info
                    write_record(self.results_dir, record)
                else:
                    self.to_submit.append(tracked)
            fresh = list(self.to_submit)
            self._plan(self.to_submit)
            for owner, _ in taken.values():
                forget_driver(self.results_dir, owner)
        for owner, tracked in foreign.values():
            self.log(f"slurm: {len(tracked)} run(s) are being watched by {driver_text(owner)}; "
                     "waiting for their results (this driver takes them over if that one stops)")
        for owner, count in taken.values():
            self.log(f"slurm: {driver_text(owner)} is gone; this driver watches its {count} run(s) now")
        watched = [t for t in self.pending.values() if t.mine and t.job_id and not t.rerun and t not in fresh]
        if watched:
            self.log(f"slurm: {len(watched)} run(s) already submitted (job {_jobs_text(t.job_id for t in watched)}); "
                     "watching them, not resubmitting")

    def _take_over(self) -> None:
        """Runs another driver watched: claim those whose driver has gone."""
        foreign = [t for t in self.pending.values() if not t.mine]
        if not foreign:
            return
        taken: dict[str, tuple[dict, int]] = {}
        alive: dict[str, bool] = {}
        with folder_lock(self.results_dir, self.log):
            for tracked in foreign:
                record = read_record(self.results_dir, tracked.run.key)
                owner = (record or {}).get("driver") or {}
                if record and owner.get("id") and not self.lock.owns(record):
                    if owner["id"] not in alive:
                        alive[owner["id"]] = driver_alive(self.results_dir, owner)
                    if alive[owner["id"]]:
                        tracked.record = record
                        continue
                if owner.get("id"):
                    taken[owner["id"]] = (owner, taken.get(owner["id"], (owner, 0))[1] + 1)
                tracked.mine, tracked.record = True, record
                if record:
                    record["driver"] = self.lock.info
                    write_record(self.results_dir, record)
                else:  # its driver dropped it (sbatch refused it): submit it here
                    tracked.baseline = _stat(run_path(self.results_dir, tracked.run.key))
                    self.to_submit.append(tracked)
            self._plan(self.to_submit)
            for owner, _ in taken.values():
                forget_driver(self.results_dir, owner)
        for owner, count in taken.values():
            self.log(f"slurm: {driver_text(owner)} is gone; this driver watches its {count} run(s) now")

    # ---------------------------------------------------------------- submitting

    def _plan(self, tracked: list[_Tracked]) -> None:
        """Write a ``submitting`` record for each run about to be submitted (before sbatch)."""
        self.to_submit = []
        if not tracked:
            return
        by_key = {t.run.key: t for t in tracked}
        groups = group_runs([t.run for t in tracked])
        for start in range(0, len(groups), MAX_ARRAY):
            name = f"liftbench-{uuid.uuid4().hex[:12]}"
            chunk = [[by_key[run.key] for run in group] for group in groups[start : start + MAX_ARRAY]]
            self.plans.append((name, chunk))  # first: an interrupt from here on drops these records again
            when = now_iso()
            for index, group in enumerate(chunk):
                for t in group:
                    t.record = {
                        "run_key": t.run.key, "label": t.run.spec.label(), "spec": asdict(t.run.spec), "executor": "slurm",
                        "state": "submitting", "job_name": name, "array_index": index, "submitting_at": when,
                        "job_id": "", "array_job_id": "", "logs": str(self.logs), "group": [u.run.key for u in group],
                        "host": socket.gethostname(), "driver": self.lock.info, "submitted_by": self.lock.info,
                    }
                    t.phase, t.unknown_since, t.ended_since = "submitting", None, None
                    write_record(self.results_dir, t.record)

    def _submit(self) -> None:
        """sbatch the planned arrays; fill their job ids into the records."""
        if not self.plans:
            return
        import submitit

        executor = submitit.SlurmExecutor(folder=self.logs, max_num_timeout=0)
        try:
            executor.update_parameters(**slurm_parameters(self.options))
        except ValueError as exc:
            raise UsageError(f"invalid Slurm options: {exc}") from None
        ctx = self.ctx
        payload_base = {
            "results_dir": str(self.results_dir),
            "cache_dir": str(Path(ctx.cache_dir).absolute()),
            "device": ctx.device,
            "data_root": str(Path(ctx.data_root).absolute()) if ctx.data_root else None,
            "disabled_plugins": list(ctx.disabled_plugins),
            "skip_done": not self.options.get("force", False),
        }
        while self.plans:
            name, chunk = self.plans[0]
            executor.update_parameters(job_name=name)
            payloads = [{**payload_base, "runs": [asdict(t.run.spec) for t in group]} for group in chunk]
            with _interrupt_deferred():  # Ctrl-C waits until sbatch has answered and its job ids are recorded
                try:
                    jobs = executor.map_array(run_group, payloads)
                except Exception as exc:
                    self._sbatch_failed(name, chunk, exc)
                    continue
                self.plans.pop(0)
                for job, group in zip(jobs, chunk, strict=True):  # one group alone is a plain job (submitit)
                    self._fill_in(str(job.job_id), group)
            runs = sum(len(group) for group in chunk)
            self.log(f"slurm: submitted {runs} run(s) as {len(chunk)} array task(s) of job {_jobs_text([jobs[0].job_id])}; logs in {self.logs}")

    def _sbatch_failed(self, name: str, chunk: list[list[_Tracked]], exc: Exception) -> None:
        sure, job_ids, problem = find_submission(name, chunk[0][0].record.get("submitting_at"), len(chunk), str(self.logs))
        if job_ids:  # sbatch failed on its way back, but the job is there
            self.plans.pop(0)
            for group in chunk:
                self._fill_in(job_ids[group[0].record["array_index"]], group)
            self.log(f"slurm: sbatch reported an error, but Slurm has the job ({_jobs_text(job_ids)}): watching it")
            return
        message = f"sbatch refused the jobs: {str(exc).strip()[-2000:]}"
        if sure:
            for group in chunk:
                for t in group:
                    record_path(self.results_dir, t.run.key).unlink(missing_ok=True)
        else:
            message += (f"\n(liftbench could not tell whether Slurm took them: {problem}; their records stay "
                        f"'submitting' under job name {name}, and the next `liftbench run` looks for that name first)")
        raise UsageError(message)

    def _fill_in(self, job_id: str, tracked: list[_Tracked]) -> None:
        """Record the job id (``123_4``, or ``123`` for a lone task) and log paths of one group's
        task, from sbatch or found by the submission's job name."""
        from submitit.core.utils import JobPaths

        when = now_iso()
        for t in tracked:
            record = dict(t.record)
            paths = JobPaths(record.get("logs") or self.logs, job_id=job_id, task_id=0)
            record.update(state="submitted", job_id=job_id, array_job_id=job_id.split("_")[0], submitted_at=when,
                          stdout=str(paths.stdout), stderr=str(paths.stderr))
            t.record, t.phase = record, "queued"
            write_record(self.results_dir, record)

    # ---------------------------------------------------------------- watching

    def watch(self) -> None:
        """Until every run has a new result file or has been recorded as failed."""
        self._submit()
        last_query = -float("inf")
        while self.pending:
            self._collect()
            if self.pending and time.monotonic() - last_query >= self.poll:
                last_query = time.monotonic()
                self._take_over()
                self._resolve()
                self._query()
                self._plan(self.to_submit)
                self._submit()
                self._summary()
            if self.pending:
                time.sleep(min(1.0, self.poll))

    def _collect(self) -> None:
        for key in list(self.pending):
            tracked = self.pending[key]
            path = run_path(self.results_dir, key)
            stat = _stat(path)
            if stat is None or stat == tracked.baseline:
                continue
            del self.pending[key]
            status, error = _result(path)
            if status == "failed":
                log = (tracked.record or {}).get("stdout")
                self.log(f"FAILED {tracked.run.spec.label()}: {error.splitlines()[0] if error else ''}"
                         + (f" (log: {log})" if log and Path(log).exists() else ""))
            self._count(tracked.run, status)

    def _query(self) -> None:
        watched = [t for t in self.pending.values() if t.mine and t.job_id]
        if not watched:
            return
        answer = query_jobs({t.job_id for t in watched})
        problems = answer.why_unknown() if answer.problems else ""
        if problems != self.told_problems:  # squeue or sacct failing: say so once, and when it recovers
            self.log(f"slurm: Slurm does not answer as it should: {problems}" if problems else "slurm: squeue and sacct answer again")
            self.told_problems = problems
        now = time.monotonic()
        unknown = []
        for tracked in watched:
            phase, state = answer.judge(tracked.job_id, tracked.record.get("job_name", ""))
            if phase != "unknown" and tracked.job_id in self.told_unknown:
                self.told_unknown.discard(tracked.job_id)
                self.log(f"slurm: job {tracked.job_id} answers again: {state.detail if state else phase}")
            tracked.phase = phase
            if phase in ("queued", "running"):
                tracked.unknown_since = tracked.ended_since = None
            elif phase == "unknown":
                tracked.ended_since = None
                unknown.append(tracked)
            else:
                tracked.unknown_since = None
                tracked.ended_since = tracked.ended_since or now
                if now - tracked.ended_since >= min(self.poll, 2.0) * 1.5:  # a result written as the job ended lands first
                    self._ended(tracked, ended_reason(tracked.record, state))
        if unknown:
            self._unknown(unknown, f"Slurm gives no state for job {', '.join(sorted({t.job_id for t in unknown}))} ({answer.why_unknown()})")

    def _resolve(self) -> None:
        """Records left ``submitting`` by a driver that died around sbatch: find the job by its name."""
        waiting: dict[str, list[_Tracked]] = {}
        for tracked in self.pending.values():
            if tracked.mine and tracked.record and not tracked.job_id:
                waiting.setdefault(tracked.record.get("job_name") or "", []).append(tracked)
        for name, tracked in waiting.items():
            record = tracked[0].record
            size = max(int(t.record.get("array_index", 0)) for t in tracked) + 1
            found = find_submission(name, record.get("submitting_at"), size, record.get("logs")) if name else (True, None, "")
            sure, job_ids, problem = found
            if job_ids:
                for t in tracked:
                    self._fill_in(job_ids[int(t.record.get("array_index", 0))], [t])
                self.log(f"slurm: the submission {driver_text(record.get('submitted_by'))} did not finish recording is "
                         f"job {_jobs_text(job_ids)}: watching its {len(tracked)} run(s)")
            elif sure and (not name or _age_s(record, "submitting_at") > RESOLVE_GRACE_S):
                self.log(f"slurm: Slurm has no job named {name or '?'} ({driver_text(record.get('submitted_by'))} died before "
                         f"submitting it): submitting its {len(tracked)} run(s)")
                for t in tracked:
                    t.baseline = _stat(run_path(self.results_dir, t.run.key))
                self.to_submit += tracked
            elif not sure:
                self._unknown(tracked, f"cannot tell whether Slurm has job {name} ({problem})")

    def _unknown(self, tracked: list[_Tracked], why: str) -> None:
        """Slurm gives no state: wait, say so once, give up after the timeout (the user's to change)."""
        now, timeout = time.monotonic(), unknown_timeout()
        new = [t for t in tracked if t.unknown_since is None]
        for t in new:
            t.unknown_since = now
            t.phase = "unknown"
        fresh = [t for t in new if (t.job_id or t.record.get("job_name")) not in self.told_unknown]
        if fresh:
            self.told_unknown |= {t.job_id or t.record.get("job_name") for t in fresh}
            self.log(f"slurm: {why}; waiting: a run whose job has no state for {timeout:g} s is recorded as failed "
                     "(LIFTBENCH_SLURM_UNKNOWN_TIMEOUT=SECONDS to change)")
        for t in tracked:
            if now - t.unknown_since < timeout:
                continue
            if t.rerun:
                self._resubmit(t)
                continue
            reason = (f"{why} for {timeout:g} s: given up by the driver (LIFTBENCH_SLURM_UNKNOWN_TIMEOUT). If the job "
                      f"still runs, its result replaces this row; `liftbench status` shows it.\n{log_lines(t.record)}")
            self._record_failed(t, reason)

    def _ended(self, tracked: _Tracked, reason: str) -> None:
        if _stat(run_path(self.results_dir, tracked.run.key)) not in (None, tracked.baseline):
            return  # its result has arrived: counted on the next pass
        if tracked.rerun:
            self._resubmit(tracked)
        else:
            self._record_failed(tracked, reason)

    def _resubmit(self, tracked: _Tracked) -> None:
        tracked.rerun = False
        tracked.baseline = _stat(run_path(self.results_dir, tracked.run.key))
        self.to_submit.append(tracked)

    def _record_failed(self, tracked: _Tracked, reason: str) -> None:
        del self.pending[tracked.run.key]
        self.ctx.record_failure(tracked.run, reason)  # counts it; keeps an ok result that is there

    def _summary(self) -> None:
        phases = Counter(t.phase or "queued" if t.mine else "waiting for another driver" for t in self.pending.values())
        summary = ", ".join(f"{n} {'no state from Slurm' if p == 'unknown' else p}" for p, n in sorted(phases.items()))
        if summary and summary != self.last_summary:
            self.log(f"slurm: {summary}")
            self.last_summary = summary

    def left_on_cluster(self) -> list[dict]:
        return [t.record for t in self.pending.values() if t.mine and t.record and t.job_id]

    def drop_unsubmitted(self) -> int:
        """Interrupted: remove the records of planned submissions whose sbatch never ran."""
        dropped = 0
        for _, chunk in self.plans:
            for group in chunk:
                for t in group:
                    record_path(self.results_dir, t.run.key).unlink(missing_ok=True)
                    dropped += 1
        self.plans = []
        return dropped


@contextmanager
def _interrupt_deferred():
    """Block SIGINT (sbatch inherits the mask) until the block ends; a Ctrl-C meanwhile is raised then."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def execute(runs, ctx) -> None:
    """Claim what needs running, submit it, then watch until every run has its result or its job has ended."""
    options = dict(ctx.executor_options)
    if runs and not shutil.which("sbatch"):
        raise UsageError("--executor slurm needs Slurm's sbatch on PATH: run liftbench on a cluster login node")
    results_dir = Path(ctx.results_dir).absolute()
    logs = Path(options["logs"]).absolute() if options.get("logs") else jobs_dir(results_dir) / "logs"
    poll = _poll_interval(options)
    if _positive_int(options, "gpus") and not str(ctx.device).startswith("cuda"):
        ctx.log("slurm: warning: the jobs get GPUs (--slurm-gpus) but run on --device cpu; add --device cuda")
    slurm_parameters(options)  # a bad option stops here, before anything is claimed

    for run in runs:  # a run the grid skips needs no job
        if run.skip_reason:
            ctx.run_one(run)
    remote = [run for run in runs if not run.skip_reason]
    if not remote:
        return
    lock = DriverLock(results_dir).start()
    if not lock.locks:
        ctx.log(f"slurm: warning: {results_dir} has no file locks: do not run two drivers on it at once")
    driver = _Driver(ctx, options, results_dir, logs, poll, lock)
    try:
        driver.claim(remote)
        driver.watch()
    except KeyboardInterrupt:
        driver.drop_unsubmitted()
        left = driver.left_on_cluster()
        print(
            f"\nliftbench: stopped watching; {len(left)} run(s) stay queued or running on the cluster (job {_jobs_text(r['job_id'] for r in left)}). "
            f"`liftbench status {ctx.results_dir}` shows them; the same `liftbench run` command gathers them without resubmitting.",
            file=sys.stderr,
        )
        raise
    finally:
        lock.close()
