"""Slurm jobs as liftbench sees them: the job records it keeps in ``<results>/.jobs/``, who watches
them, what ``squeue``/``sacct`` say about them, and the one guarded way a failed row is written.
Shared by the ``slurm`` executor's driver and worker and by ``liftbench status``; it needs no
submitit, so ``status`` stays light and works wherever the Slurm commands are.

The safety rules this module implements (a record before ``sbatch``, unknown is not gone, one driver per
run, ok is never replaced by failed) are written once, in ``docs/cluster.md``, "The rules".
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from liftbench.run.results import DONE, result_status, write_failed_unless_done, write_text_atomic  # noqa: F401  (the one write rule)

JOBS_DIR = ".jobs"
DRIVERS_DIR = "drivers"
QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", "STOPPED"}
RUNNING = {"RUNNING", "CONFIGURING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT", "POWER_UP_NODE"}
UNKNOWN_TIMEOUT_S = 600  # a job Slurm gives no state for this long is given up (LIFTBENCH_SLURM_UNKNOWN_TIMEOUT)
QUERY_TIMEOUT_S = 60  # one squeue or sacct call (LIFTBENCH_SLURM_QUERY_TIMEOUT)
RESOLVE_GRACE_S = 30  # sacct may learn of a job a little after sbatch returned
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS)


def _env_seconds(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return float(default)


def unknown_timeout() -> float:
    return _env_seconds("LIFTBENCH_SLURM_UNKNOWN_TIMEOUT", UNKNOWN_TIMEOUT_S)


def query_timeout() -> float:
    return max(0.5, _env_seconds("LIFTBENCH_SLURM_QUERY_TIMEOUT", QUERY_TIMEOUT_S))


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _age_s(record: dict, field_name: str = "submitted_at") -> float:
    try:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(record[field_name])).total_seconds()
    except (KeyError, ValueError, TypeError):
        return float("inf")


# --------------------------------------------------------------------------- job records


def jobs_dir(results_dir: Path) -> Path:
    return Path(results_dir) / JOBS_DIR


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def record_path(results_dir: Path, key: str) -> Path:
    return jobs_dir(results_dir) / f"{key}.json"


def write_record(results_dir: Path, record: dict) -> None:
    write_json_atomic(record_path(results_dir, record["run_key"]), record)


def read_record(results_dir: Path, key: str) -> dict | None:
    try:
        return json.loads(record_path(results_dir, key).read_text())
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


# --------------------------------------------------------------------------- drivers: who watches a run


def driver_text(driver: dict | None) -> str:
    driver = driver or {}
    return f"driver pid {driver.get('pid', '?')} on host {driver.get('host', '?')} since {driver.get('since', '?')}"


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, TypeError, ValueError):
        return True  # not ours to signal, or unreadable: assume it lives
    return True


class DriverLock:
    """This process as a driver of a results folder. ``.jobs/drivers/<id>.json`` says who it is (pid,
    host, start time) and stays ``flock``-ed while the process lives: the kernel, or the NFS server's
    lock manager once the client's lease lapses, drops the lock however the process ends, so a lock
    that can be taken means its driver is gone. The file is locked before it gets its name, so a
    driver file without a lock is never a live driver's."""

    def __init__(self, results_dir: Path):
        host = socket.gethostname()
        self.results_dir = Path(results_dir)
        self.info = {"id": f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}", "pid": os.getpid(), "host": host, "since": now_iso()}
        self.path = jobs_dir(results_dir) / DRIVERS_DIR / f"{self.info['id']}.json"
        self.fd: int | None = None
        self.locks = True  # False where the file system refuses locks

    @property
    def id(self) -> str:
        return self.info["id"]

    def start(self) -> DriverLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                raise
            self.locks = False
        os.write(self.fd, json.dumps(self.info).encode())
        os.fsync(self.fd)
        os.rename(tmp, self.path)  # the lock stays with the file (it is on the inode)
        return self

    def close(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def owns(self, record: dict | None) -> bool:
        return bool(record) and (record.get("driver") or {}).get("id") == self.id


def driver_alive(results_dir: Path, driver: dict | None) -> bool:
    """Whether the driver a record names still lives (its driver file is locked). Where the file
    system has no locks, a driver on this host is alive while its pid is; one elsewhere is assumed
    alive (delete its ``.jobs/drivers/<id>.json`` to release its runs)."""
    if not driver or not driver.get("id"):
        return False
    path = jobs_dir(results_dir) / DRIVERS_DIR / f"{driver['id']}.json"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: treat it as alive (never take a run from a live driver)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return _pid_alive(driver.get("pid")) if driver.get("host") == socket.gethostname() else True
    finally:
        os.close(fd)
    return False


def forget_driver(results_dir: Path, driver: dict | None) -> None:
    """Remove a dead driver's file (call only after :func:`driver_alive` said False)."""
    if driver and driver.get("id"):
        try:
            (jobs_dir(results_dir) / DRIVERS_DIR / f"{driver['id']}.json").unlink()
        except OSError:
            pass


@contextmanager
def folder_lock(results_dir: Path, log: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Hold ``.jobs/.lock`` (an exclusive ``flock``) while claiming runs: two drivers starting at
    once take turns. Yields False where the file system has no locks (then nothing is held)."""
    path = jobs_dir(results_dir) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    held = True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log(f"slurm: waiting for another liftbench driver to finish claiming runs in {path.parent}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                raise
            held = False
        yield held
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- result files: ok wins


# --------------------------------------------------------------------------- asking Slurm


@dataclass
class JobState:
    state: str  # Slurm's state word: PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, ...
    detail: str = ""  # with the state word: "CANCELLED by 0, exit 0:15", "FAILED (NonZeroExitCode)", "PENDING (JobHeldUser)"
    name: str = ""  # the job name (liftbench-<token>)
    source: str = ""  # squeue | sacct

    @property
    def phase(self) -> str:
        """queued | running | ended"""
        if self.state in QUEUED:
            return "queued"
        if self.state in RUNNING:
            return "running"
        return "ended"


@dataclass
class SlurmAnswer:
    """What ``squeue`` and ``sacct`` said about some jobs, and whether they answered at all."""

    squeue: dict[str, JobState] = field(default_factory=dict)
    sacct: dict[str, JobState] = field(default_factory=dict)
    squeue_ok: bool = False
    sacct_ok: bool = False
    accounting: bool = True  # False: sacct missing or accounting disabled (squeue's word is final)
    problems: list[str] = field(default_factory=list)

    def judge(self, job_id: str, name: str = "") -> tuple[str, JobState | None]:
        """(phase, state) of one array task: queued | running | ended | unknown. ``ended`` needs
        sacct's final state (or squeue's on a cluster without accounting); anything less, including
        squeue seeing an end that sacct does not confirm yet, is ``unknown`` or still live."""
        def mine(state):  # a job id reused by another job (a reinstalled Slurm) is not ours
            return state if state and (not name or not state.name or state.name == name) else None

        sq, sa = mine(self.squeue.get(job_id)), mine(self.sacct.get(job_id))
        if sq and sq.phase != "ended":
            return sq.phase, sq
        if sa:
            if sa.phase == "ended" and sq and sq.detail and sq.detail not in sa.detail:
                sa = JobState(sa.state, f"{sa.detail}; squeue: {sq.detail}", sa.name, "sacct")
            return sa.phase, sa
        if sq and not self.accounting:
            return "ended", sq
        return "unknown", sq

    def why_unknown(self) -> str:
        return "; ".join(self.problems) or "neither squeue nor sacct lists it"


def slurm_commands_available() -> bool:
    return bool(shutil.which("squeue") or shutil.which("sacct"))


def _run(command: list[str], timeout: float | None = None) -> tuple[bool, str, str]:
    """(answered, stdout, problem) of one Slurm command: answered means exit 0 within the timeout."""
    timeout = timeout or query_timeout()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "", f"{command[0]} gave no answer within {timeout:g} s"
    except (OSError, subprocess.SubprocessError) as exc:
        return False, "", f"{command[0]} failed: {exc}"
    if proc.returncode != 0:
        text = (proc.stderr or proc.stdout).strip().splitlines()
        return False, proc.stdout, f"{command[0]} exited {proc.returncode}" + (f": {text[-1][:200]}" if text else "")
    return True, proc.stdout, ""


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


def _squeue_state(state: str, reason: str, name: str) -> JobState:
    reason = "" if reason in ("None", "") else reason
    return JobState(state, f"{state} ({reason})" if reason else state, name, "squeue")


def _sacct_state(state: str, exit_code: str, name: str) -> JobState:
    return JobState(state.split()[0] if state else "UNKNOWN", f"{state}, exit {exit_code}", name, "sacct")


def _sacct(command: list[str], answer: SlurmAnswer) -> list[list[str]]:
    if not shutil.which("sacct"):
        answer.accounting = False
        return []
    ok, out, problem = _run(command)
    if not ok and "disabled" in problem.lower():  # "Slurm accounting storage is disabled"
        answer.accounting = False
        return []
    answer.sacct_ok = ok
    if problem:
        answer.problems.append(problem)
    return [line.strip().split("|") for line in out.splitlines() if line.strip()]


def query_jobs(job_ids: Iterable[str]) -> SlurmAnswer:
    """What Slurm says about array tasks (``123_4``): ``squeue`` for the live ones, ``sacct`` for the
    others (and for those squeue saw end, so their final state and exit code come from sacct)."""
    ids = {str(j) for j in job_ids if j}
    answer = SlurmAnswer()
    if not ids:
        answer.squeue_ok = answer.sacct_ok = True
        return answer
    arrays = sorted({j.split("_")[0] for j in ids})
    if shutil.which("squeue"):
        ok, out, problem = _run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r|%j", "-j", ",".join(arrays)])
        if not ok and "invalid job id" in problem.lower():
            ok, problem = True, ""  # none of them is in the controller any more: sacct knows
        answer.squeue_ok = ok
        if problem:
            answer.problems.append(problem)
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 4 and parts[0] in ids:
                answer.squeue[parts[0]] = _squeue_state(parts[1], parts[2], parts[3])
    ask = {j for j in ids if j not in answer.squeue or answer.squeue[j].phase == "ended"}
    if ask:
        wanted = sorted({j.split("_")[0] for j in ask})
        for parts in _sacct(["sacct", "-n", "-P", "-X", "-o", "JobID,State,ExitCode,JobName", "-j", ",".join(wanted)], answer):
            if len(parts) != 4:
                continue
            for job_id in _expand(parts[0]):
                if job_id in ask:
                    answer.sacct[job_id] = _sacct_state(parts[1], parts[2], parts[3])
    else:
        answer.sacct_ok = True
    return answer


def _submitted_script(logs: str | None, name: str, since: str | None) -> str | None:
    """The job id in the name of submitit's ``<job>_submission.sh`` that carries job name ``name``:
    submitit renames the script after sbatch answers, so it survives a driver killed right after."""
    if not logs:
        return None
    try:
        floor = datetime.fromisoformat(since).timestamp() - 120 if since else 0
    except ValueError:
        floor = 0
    for path in Path(logs).glob("*_submission.sh"):
        try:
            if path.stat().st_mtime >= floor and f"--job-name={name}\n" in path.read_text(errors="replace"):
                return path.name[: -len("_submission.sh")]
        except OSError:
            continue
    return None


def find_submission(name: str, since: str | None, tasks: int, logs: str | None = None) -> tuple[bool, list[str] | None, str]:
    """Find the submission whose job name is ``name`` (unique per submission), of ``tasks`` array
    tasks (submitit submits a lone task as a plain job): submitit's script in ``logs``, ``squeue -n``,
    then ``sacct --name`` (which lists a job only once it was eligible to start: not a held one).

    Returns (sure, job id of each task or None, problem). Not finding it is ``sure`` only when both
    squeue and sacct answered (squeue alone without accounting): a pending job is in the controller."""
    found, problems, answer = set(), [], SlurmAnswer()
    script = _submitted_script(logs, name, since)
    if script:
        found.add(script)
    if not found and shutil.which("squeue"):
        ok, out, problem = _run(["squeue", "-h", "-r", "-t", "all", "-n", name, "-o", "%i|%j"])
        answer.squeue_ok = ok
        problems += [problem] if problem else []
        found |= {parts[0] for parts in (line.strip().split("|") for line in out.splitlines()) if len(parts) == 2 and parts[1] == name}
    if not found:
        start = "1970-01-01T00:00:00"
        try:
            start = (datetime.fromisoformat(since) - timedelta(hours=1)).astimezone().strftime("%Y-%m-%dT%H:%M:%S") if since else start
        except ValueError:
            pass
        for parts in _sacct(["sacct", "-n", "-P", "-X", "--name", name, "-S", start, "-o", "JobID,JobName"], answer):
            if len(parts) == 2 and parts[1] == name:
                found |= set(_expand(parts[0]))
        problems += answer.problems
    if not found:
        sure = answer.squeue_ok and (answer.sacct_ok or not answer.accounting)
        return sure, None, "; ".join(problems)
    base = sorted(found)[0].split("_")[0]
    ids = [f"{base}_{index}" for index in range(tasks)] if any("_" in j for j in found) or tasks > 1 else [base]
    return True, ids, "; ".join(problems)


# --------------------------------------------------------------------------- reasons


def log_tail(path: str | None, lines: int = 8) -> str:
    try:
        text = Path(path).read_text(errors="replace") if path else ""
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def log_lines(record: dict) -> str:
    """``log: PATH`` (and stderr) where the task wrote a log; a task that never started has none."""
    stdout, stderr = record.get("stdout"), record.get("stderr")
    if stdout and Path(stdout).exists():
        return f"log: {stdout}" + (f"\nstderr: {stderr}" if stderr and Path(stderr).exists() else "")
    return "(no log: the task never started)"


def ended_reason(record: dict, state: JobState | None) -> str:
    """The error text of a run whose job ended without writing its result."""
    job = record.get("job_id") or "?"
    if state is None:
        head = f"Slurm job {job} is no longer known to squeue or sacct and wrote no result for this run"
    elif state.state == "TIMEOUT":
        head = f"Slurm job {job} reached its time limit ({state.detail}) before this run finished; raise --slurm-time"
    elif state.state == "COMPLETED":
        head = f"Slurm job {job} completed without writing this run's result ({state.detail})"
    else:
        head = f"Slurm job {job} ended {state.detail or state.state} before this run finished"
    text = f"{head}\n{log_lines(record)}"
    tail = log_tail(record.get("stderr")) or log_tail(record.get("stdout"))
    return f"{text}\n--- last lines of the log ---\n{tail}" if tail else text
