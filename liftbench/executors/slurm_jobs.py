"""Slurm jobs as liftbench sees them: the job records it keeps in ``<results>/.jobs/`` and what
``squeue``/``sacct`` say about them. Shared by the ``slurm`` executor's driver and ``liftbench status``;
it needs no submitit, so ``status`` stays light and works wherever the Slurm commands are.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from liftbench.results import write_text_atomic

JOBS_DIR = ".jobs"
QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", "STOPPED"}
RUNNING = {"RUNNING", "CONFIGURING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT", "POWER_UP_NODE"}
UNKNOWN_GRACE_S = 300  # a job Slurm does not know this long after submission is gone


# --------------------------------------------------------------------------- job records


def jobs_dir(results_dir: Path) -> Path:
    return Path(results_dir) / JOBS_DIR


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def read_record(results_dir: Path, key: str) -> dict | None:
    try:
        return json.loads((jobs_dir(results_dir) / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None


def read_records(results_dir: Path) -> dict[str, dict]:
    """Run key → job record of every readable ``.jobs/*.json``."""
    records = {}
    for path in sorted(jobs_dir(results_dir).glob("*.json")):
        try:
            records[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return records


# --------------------------------------------------------------------------- asking Slurm


@dataclass
class JobState:
    state: str  # Slurm's state word: PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, ...
    detail: str = ""  # e.g. "CANCELLED by 0, exit 0:15" or the pending reason

    @property
    def phase(self) -> str:
        """queued | running | ended"""
        if self.state in QUEUED:
            return "queued"
        if self.state in RUNNING:
            return "running"
        return "ended"


def slurm_commands_available() -> bool:
    return bool(shutil.which("squeue") or shutil.which("sacct"))


def _run_quiet(command: list[str]) -> str:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout


def _expand(job_id: str) -> list[str]:
    """``12_[0-3,7%2]`` → ``12_0 … 12_3, 12_7`` (how sacct shows an array's pending tasks)."""
    match = re.fullmatch(r"(\d+)_\[([^\]]*)\]", job_id)
    if not match:
        return [job_id]
    base, spec = match.group(1), match.group(2).split("%")[0]
    ids = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            ids += [f"{base}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return ids


def job_states(job_ids: Iterable[str]) -> dict[str, JobState]:
    """Slurm's view of array tasks (``123_4``): ``squeue`` first (live, and recent ends), then
    ``sacct`` for the ones the controller has forgotten. A job neither knows is absent."""
    ids = {str(j) for j in job_ids if j}
    found: dict[str, JobState] = {}
    if not ids:
        return found
    arrays = sorted({j.split("_")[0] for j in ids})
    if shutil.which("squeue"):
        for line in _run_quiet(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j", ",".join(arrays)]).splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3 and parts[0] in ids:
                reason = "" if parts[2] in ("None", "") else parts[2]
                found[parts[0]] = JobState(parts[1], reason)
    # sacct: jobs the controller forgot, and the exit details of those that just ended
    ask = (ids - set(found)) | {j for j, state in found.items() if state.phase == "ended"}
    if ask and shutil.which("sacct"):
        wanted = sorted({j.split("_")[0] for j in ask})
        for line in _run_quiet(["sacct", "-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j", ",".join(wanted)]).splitlines():
            parts = line.strip().split("|")
            if len(parts) != 3:
                continue
            for job_id in _expand(parts[0]):
                state = JobState(parts[1].split()[0] if parts[1] else "UNKNOWN", f"{parts[1]}, exit {parts[2]}")
                if job_id in ask and (job_id not in found or state.phase == "ended"):
                    found[job_id] = state
    return found


def log_tail(path: str | None, lines: int = 8) -> str:
    try:
        text = Path(path).read_text(errors="replace") if path else ""
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def ended_reason(record: dict, state: JobState | None) -> str:
    """The error text of a run whose job ended without writing its result."""
    job = record.get("job_id", "?")
    if state is None:
        head = f"Slurm job {job} is no longer known to squeue or sacct and wrote no result for this run"
    elif state.state == "TIMEOUT":
        head = f"Slurm job {job} reached its time limit ({state.detail}) before this run finished; raise --slurm-time"
    elif state.state == "COMPLETED":
        head = f"Slurm job {job} completed without writing this run's result ({state.detail})"
    else:
        head = f"Slurm job {job} ended {state.detail or state.state} before this run finished"
    text = f"{head}\nlog: {record.get('stdout', '?')}\nstderr: {record.get('stderr', '?')}"
    tail = log_tail(record.get("stderr")) or log_tail(record.get("stdout"))
    return f"{text}\n--- last lines of the log ---\n{tail}" if tail else text


def _age_s(record: dict) -> float:
    try:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(record["submitted_at"])).total_seconds()
    except (KeyError, ValueError, TypeError):
        return float("inf")
