"""The Slurm worker side: what runs on a compute node, and the one place a Slurm failure is written.

A job's array task calls :func:`run_group` with the runs of one feature-cache group. It runs them in
order through an :class:`~liftbench.run.runner.ExecutionContext`, through its public ``run_one`` and
``record_failure``, whose rows go through the one write rule, so a failure never replaces a result another
copy finished (an ``ok`` file always wins). Slurm's stop
signals (``scancel``, the time limit, preemption) are turned into recorded failures by
:class:`_StopWatch`, with a watchdog for a main thread that cannot record them itself.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from liftbench.run.executors.slurm_jobs import (
    DONE,
    result_status,
)
from liftbench.run.results import run_path, write_result


def write_failed(results_dir: Path, key: str, rows: list[dict]) -> str:
    """Write a run's failed rows unless it already has an ok (or skipped) file; returns the status kept."""
    return write_result(results_dir, key, rows)


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


class _StopWatch:
    """A worker's stop signals. The first one raises :class:`_Stopped` wherever the worker is, and the
    worker records the run it was in and those it will not reach. That exception can be lost: library
    code swallows it (a ``__del__``) or turns it into another (an extension module's import fails with
    "initialization failed"), and srun forwards scancel's TERM, so a second one arrives while the first
    is being handled. So: the handlers are set before anything else (submitit's would ignore TERM);
    a later signal is ignored; the worker checks the flag after each run and on any exception; and a
    watchdog thread records the stop itself, then ends the process, if the main thread has not begun
    to within ``GRACE_S``."""

    GRACE_S = 1.0

    def __init__(self, payload: dict, log_path: str):
        self.payload, self.log_path = payload, log_path
        self.signum: int | None = None
        self.lock = threading.Lock()
        self.recorder: str | None = None
        self.ctx = None
        self.runs: list = []
        self.index = 0  # the run in progress: it and the ones after it are recorded on a stop

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGUSR2, signal.SIGTERM):
                signal.signal(signum, self._handler)

    def _handler(self, signum, frame) -> None:
        if self.signum is not None:
            return  # stopping already
        self.signum = signum
        threading.Thread(target=self._watchdog, name="liftbench-stop", daemon=True).start()
        raise _Stopped(signum)

    def _claim(self) -> bool:
        with self.lock:
            if self.recorder is not None:
                return False
            self.recorder = threading.current_thread().name
            return True

    def _watchdog(self) -> None:
        time.sleep(self.GRACE_S)
        if not self._claim():
            return
        try:
            print(
                f"liftbench: the worker did not act on the stop signal within {self.GRACE_S:g} s; recording it here",
                flush=True,
            )
            self._record()
        finally:
            os._exit(1)

    def finish(self) -> dict[str, str]:
        """The main thread saw the stop: record it, unless the watchdog does (it then ends the process)."""
        if not self._claim():
            while True:
                time.sleep(3600)
        return self._record()

    def _record(self) -> dict[str, str]:
        if self.ctx is None or not self.runs:
            self.ctx, self.runs = _prepare(self.payload, self.log_path)
        note = str(_Stopped(self.signum)) + (f"\nlog: {self.log_path}" if self.log_path else "")
        statuses = {}
        for run in self.runs[self.index :]:
            try:
                statuses[run.key] = self.ctx.record_failure(run, note)
            except Exception as exc:  # the driver records it from Slurm's state instead
                print(f"liftbench: could not record the stop of {run.key}: {type(exc).__name__}: {exc}", flush=True)
        return statuses


def _own_log_path() -> str:
    try:
        import submitit

        return str(submitit.JobEnvironment().paths.stdout)
    except Exception:
        return ""


def _prepare(payload: dict, log_path: str) -> tuple[Any, list]:
    from liftbench.plugin.manager import build_registry
    from liftbench.run.spec import PlannedRun, RunSpec

    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit():
        import torch

        torch.set_num_threads(int(cpus))
    disabled = tuple(payload.get("disabled_plugins", ()))
    from liftbench.run.runner import ExecutionContext

    ctx = ExecutionContext(
        registry=build_registry(disabled),
        results_dir=Path(payload["results_dir"]),
        cache_dir=Path(payload["cache_dir"]),
        device=payload.get("device", "cpu"),
        data_root=payload.get("data_root"),
        log=lambda message: print(message, flush=True),
        disabled_plugins=disabled,
        failure_note=f"\nlog: {log_path}" if log_path else "",
        refresh_caches=not payload.get("skip_done", True),  # --force: features afresh too
    )
    return ctx, [PlannedRun(RunSpec(**spec)) for spec in payload["runs"]]


def run_group(payload: dict) -> dict[str, str]:
    """One array task: the runs of one group, in order, in this process. Returns key → status."""
    log_path = _own_log_path()
    stop = _StopWatch(payload, log_path)
    stop.install()  # before anything slow: a TERM during start-up is recorded too
    statuses: dict[str, str] = {}
    try:
        stop.ctx, stop.runs = ctx, runs = _prepare(payload, log_path)
        done = {}
        if payload.get("skip_done", True):  # only this task's runs: never a scan of the shared folder
            done = {run.key: result_status(run_path(ctx.results_dir, run.key)) for run in runs}
        ctx.log(
            f"liftbench: {len(runs)} run(s) on {socket.gethostname()} (pid {os.getpid()}), results -> {ctx.results_dir}"
        )
        for index, run in enumerate(runs):
            stop.index = index
            if done.get(run.key) in DONE:
                statuses[run.key] = done[run.key]  # submitted twice: the other copy did it
                continue
            ctx.log(f"liftbench: start {run.spec.label()} ({run.key})")
            try:
                statuses[run.key] = ctx.run_one(run)
            except Exception as exc:  # a user mistake (missing data file) too: record it, do the other runs
                if stop.signum is not None:
                    raise  # the stop, turned into another exception on its way
                statuses[run.key] = ctx.record_failure(run, f"{type(exc).__name__}: {exc}\nlog: {log_path}")
            if stop.signum is not None:
                raise _Stopped(stop.signum)  # the stop was swallowed on its way: the run went on
            ctx.log(f"liftbench: {statuses[run.key]} {run.spec.label()}")
        stop.index = len(runs)
    except BaseException:
        if stop.signum is None:
            raise
        statuses.update(stop.finish())
    return statuses
