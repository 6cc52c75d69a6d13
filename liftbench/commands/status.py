"""``liftbench status RESULTS_DIR``: done / running / queued / failed / skipped runs per cell.

A cell is (dataset, size, backbone, strategy, protocol); its counts are over seeds. Finished runs
come from the result files (the same for local and Slurm runs). Runs submitted to Slurm and not
finished come from ``RESULTS_DIR/.jobs/*.json``, and ``squeue``/``sacct`` say whether they are queued
or running; where those commands are missing (a laptop reading a synced folder), or Slurm gives no
state, they are "submitted". A job whose final state (``sacct``) came without its run's result counts
as failed: the next ``liftbench run`` records it, and ``--retry-failed`` resubmits it. A log path is
shown only where the task wrote one (a task that never started has none).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from tabulate import tabulate

from liftbench.errors import UsageError
from liftbench.report.citation import citation
from liftbench.run.executors.slurm_jobs import ended_reason, query_jobs, read_records, slurm_commands_available
from liftbench.run.results import RUN_SUFFIX, UNREADABLE_DIR, failed_attempts, unreadable_runs
from liftbench.study.model import STUDY_FILE

STATES = ("done", "running", "queued", "submitted", "failed", "skipped")
CELL = ("dataset", "size", "backbone", "strategy", "protocol")
_COLUMNS = ["run_key", "dataset", "input_size", "backbone", "strategy", "protocol", "seed", "status", "error"]


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _log_of(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.startswith("log: "):
            return line[5:]
    return ""


def collect(results_dir: Path) -> list[dict]:
    """One dict per run known to the folder: its cell, seed, state, and for failures the reason and log."""
    results_dir = Path(results_dir)
    runs: dict[str, dict] = {}
    for path in sorted(results_dir.glob(f"*{RUN_SUFFIX}")):
        try:
            rows = pq.read_table(path, columns=_COLUMNS).to_pylist()
        except Exception:
            continue  # not a run file (or corrupt: the leaderboard reports it)
        if not rows:
            continue
        row = next((r for r in rows if r["status"] == "failed"), rows[0])
        state = {"ok": "done"}.get(row["status"], row["status"])
        runs[path.stem] = {
            "key": path.stem, "dataset": row["dataset"], "size": row["input_size"], "backbone": row["backbone"],
            "strategy": row["strategy"], "protocol": row["protocol"], "seed": row["seed"], "state": state,
            "reason": row["error"] if state in ("failed", "skipped") else "", "log": _log_of(row["error"]),
        }
    records = read_records(results_dir)
    # a record matters if its run has no result yet, or was resubmitted after failing
    open_records = {k: r for k, r in records.items() if k not in runs or runs[k]["state"] == "failed"}
    asked = slurm_commands_available()
    answer = query_jobs(r.get("job_id", "") for r in open_records.values()) if asked else None
    for key, record in open_records.items():
        job_id = record.get("job_id") or ""
        phase, job_state = answer.judge(job_id, record.get("job_name", "")) if answer and job_id else ("unknown", None)
        log = record.get("stdout", "") if record.get("stdout") and Path(record["stdout"]).exists() else ""
        if key in runs:  # failed before: is it being retried right now?
            if phase in ("queued", "running"):
                runs[key].update(state=phase, reason="", log=log)
            continue
        spec = record.get("spec", {})
        entry = {
            "key": key, "dataset": spec.get("dataset", "?"), "size": spec.get("size"), "backbone": spec.get("backbone", "?"),
            "strategy": spec.get("strategy", "?"), "protocol": spec.get("protocol", "?"), "seed": spec.get("seed"),
            "reason": "", "log": log, "job": job_id,
        }
        # Slurm giving no state (or no job id yet: being submitted) is not an end: "submitted"
        entry["state"] = {"unknown": "submitted", "ended": "failed"}.get(phase, phase)
        if entry["state"] == "failed":
            entry["reason"] = ended_reason(record, job_state) + "\n(not recorded yet: `liftbench run` records it; add --retry-failed to resubmit)"
            entry["log"] = _log_of(entry["reason"])
        runs[key] = entry
    return list(runs.values())


def _folders(root: Path) -> list[Path]:
    def has_runs(folder: Path) -> bool:
        return any(folder.glob(f"*{RUN_SUFFIX}")) or any((folder / ".jobs").glob("*.json"))

    if has_runs(root):
        return [root]
    return [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".") and has_runs(d)]


def _order(cell: tuple) -> tuple:
    return tuple((0, x, "") if isinstance(x, (int, float)) else (1, 0, str(x)) for x in cell)


def render(results_dir: Path, runs: list[dict]) -> str:
    totals = Counter(run["state"] for run in runs)
    shown = [s for s in STATES if s != "submitted" or totals["submitted"]]
    cells: dict[tuple, Counter] = {}
    for run in runs:
        cells.setdefault(tuple(run[c] for c in CELL), Counter())[run["state"]] += 1
    table = [[*cell, sum(counts.values()), *(counts[s] or "" for s in shown)] for cell, counts in sorted(cells.items(), key=lambda kv: _order(kv[0]))]
    lines = [f"{results_dir}: {len(runs)} runs — " + ", ".join(f"{totals[s]} {s}" for s in shown)]
    made_by = citation(results_dir, rerun=str(results_dir / STUDY_FILE), plain=True).strip()
    if made_by:
        lines.append(made_by)
    if table:
        lines += ["", tabulate(table, headers=[*CELL, "seeds", *shown], tablefmt="simple")]
    failed = [run for run in runs if run["state"] == "failed"]
    if failed:
        lines += ["", "failed (rerun with `liftbench run ... --retry-failed`):"]
        for run in sorted(failed, key=lambda r: (str(r["dataset"]), str(r["backbone"]), str(r["strategy"]), str(r["protocol"]), r["seed"] or 0)):
            lines.append(f"  {run['dataset']}@{run['size']} {run['backbone']} {run['strategy']} {run['protocol']} seed={run['seed']}: {_first_line(run['reason'])}")
            if run["log"]:
                lines.append(f"    log: {run['log']}")
    attempts = failed_attempts(results_dir)
    if attempts:
        lines += ["", f"{len(attempts)} rerun(s) failed; the earlier result of each is kept:"]
        for key, error in attempts.items():
            lines.append(f"  run {key}: {_first_line(error)}")
    unreadable = unreadable_runs(results_dir)
    if unreadable:
        lines += ["", f"{len(unreadable)} file(s) are not complete results (the next `liftbench run` moves them to "
                  f"{UNREADABLE_DIR}/ and redoes their runs):"]  # fmt: skip
        lines += [f"  {path.name}: {why}" for path, why in unreadable.items()]
    if totals["submitted"]:
        why = "Slurm gave no state for them" if slurm_commands_available() else "squeue/sacct are not available here"
        lines += ["", f"({why}: submitted runs may be queued, running or ended)"]
    return "\n".join(lines)


def status_command(args) -> int:
    root = Path(args.results_dir)
    if not root.is_dir():
        raise UsageError(f"results folder {str(root)!r} does not exist")
    folders = _folders(root)
    if not folders:
        print(f"{root}: no runs yet")
        return 0
    print("\n\n".join(render(folder, collect(folder)) for folder in folders))
    return 0
