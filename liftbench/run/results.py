"""The results format: one tidy Parquet file per run, one row per metric, written atomically.

The schema is defined once (:data:`SCHEMA`) and checked on read. A run's file is named by its key
(a hash of everything that defines the run), so a results folder answers "was this run done?" by a
file listing, and an interrupted study resumes. Files are written to a temporary name and renamed,
so a crash never leaves a half-written result. A corrupt or foreign file is reported and skipped.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from liftbench.errors import UsageError

SCHEMA = pa.schema(
    [
        ("run_key", pa.string()),
        ("kind", pa.string()),  # run | bench
        ("source", pa.string()),  # measured | reported
        ("citation", pa.string()),
        ("dataset", pa.string()),
        ("input_size", pa.int32()),
        ("backbone", pa.string()),
        ("backbone_model", pa.string()),
        ("weights", pa.string()),  # pretrained | random:SEED | a file path
        ("weights_sha256", pa.string()),  # sha256 of the state dict actually used (any source)
        ("strategy", pa.string()),
        ("schedule", pa.string()),
        ("pooling", pa.string()),
        ("backbone_mode", pa.string()),  # eval | train: how the frozen backbone ran
        ("protocol", pa.string()),
        ("seed", pa.int32()),
        ("options", pa.string()),  # JSON of the protocol options that define the run
        ("dataset_options", pa.string()),  # JSON of the dataset options that define the run
        ("data_fingerprint", pa.string()),  # hash of the data's content the run was planned on (liftbench.run.inputs)
        ("split", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("selected_on", pa.string()),  # split used to select epoch / threshold
        ("notes", pa.string()),  # JSON: what the protocol reported beside its metrics (selected step, cache hit, ...)
        ("wall_seconds", pa.float64()),
        ("peak_memory_mb", pa.float64()),  # this run's peak: process RSS (CPU) or torch's allocation (CUDA); null = unknown
        ("volumes_per_second", pa.float64()),
        ("liftbench_version", pa.string()),
        ("torch_version", pa.string()),
        ("timm_version", pa.string()),
        ("device", pa.string()),
        ("git_commit", pa.string()),  # of liftbench's own source checkout ('' for an installed package)
        ("git_dirty", pa.bool_()),  # that checkout had uncommitted changes to tracked files
        ("providers", pa.string()),  # JSON: kind -> plugin (distribution version) of strategy, backbone, dataset, protocol
        ("created_at", pa.timestamp("s", tz="UTC")),
        ("status", pa.string()),  # ok | skipped | failed
        ("error", pa.string()),
    ]
)
COLUMNS = SCHEMA.names
# Columns added after files were first written: an older file without them reads them as null.
ADDED_COLUMNS = ("dataset_options", "data_fingerprint", "git_dirty", "notes", "providers")
RUN_SUFFIX = ".parquet"
SIDE_DIRS = ("probabilities", "plots", ".cache", ".jobs", ".attempts", ".locks", ".unreadable")
DONE = ("ok", "skipped")  # a run's final statuses: never replaced by a failed row
ATTEMPTS_DIR = ".attempts"  # a failed rerun of a run whose earlier result was kept: what status shows


def rows_to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts; missing columns become null) as a table of exactly :data:`SCHEMA`."""
    frame = pd.DataFrame(list(rows))
    for name in COLUMNS:
        if name not in frame:
            frame[name] = None
    frame = frame[COLUMNS]
    if "created_at" in frame:
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False)


def replace_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it into place: a reader
    sees the old file or the whole new one, never a half-written one (and a crash leaves no file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_atomic(table: pa.Table, path: Path) -> Path:
    """Write ``table`` as Parquet to ``path``, atomically."""
    return replace_atomic(path, lambda tmp: pq.write_table(table, tmp))


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path``, atomically."""
    return replace_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def run_status(path: Path) -> tuple[str, str]:
    """(status, error) of one run file, reading only those columns: ``failed`` if any row failed.
    Raises if the file cannot be read."""
    rows = pq.read_table(path, columns=["status", "error"]).to_pylist()
    statuses = [row["status"] for row in rows]
    status = "failed" if "failed" in statuses else (statuses[0] if statuses else "ok")
    error = next((row["error"] for row in rows if row["status"] == status and row["error"]), "") or ""
    return status, error


def run_path(results_dir: Path, run_key: str) -> Path:
    return Path(results_dir) / f"{run_key}{RUN_SUFFIX}"


def write_run(results_dir: Path, run_key: str, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write one run's rows as ``<results_dir>/<run_key>.parquet``, atomically."""
    return write_atomic(rows_to_table(rows), run_path(results_dir, run_key))


def check_writable(results_dir: Path) -> Path:
    """Create the folder if needed and prove we can write there, before any run starts."""
    results_dir = Path(results_dir)
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        probe = results_dir / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"results folder {str(results_dir)!r} is not writable: {exc.strerror or exc}") from None
    return results_dir


@dataclass
class ResultsFolder:
    """What a folder holds: the valid rows, and the files skipped with their reason."""

    frame: pd.DataFrame
    problems: list[str] = field(default_factory=list)


def result_files(results_dir: Path) -> list[Path]:
    """Every run file under ``results_dir`` (recursively), skipping side folders and temporaries."""
    root = Path(results_dir)
    files = []
    for path in sorted(root.rglob(f"*{RUN_SUFFIX}")):
        rel = path.relative_to(root).parts
        if any(part in SIDE_DIRS or part.startswith(".") for part in rel):
            continue
        files.append(path)
    return files


def read_table(path: Path) -> pd.DataFrame:
    """Read one results file, checking it against :data:`SCHEMA` (ValueError if it is not one)."""
    table = pq.read_table(path)
    for name in ADDED_COLUMNS:
        if name not in table.column_names:
            table = table.append_column(SCHEMA.field(name), pa.nulls(len(table), SCHEMA.field(name).type))
    missing = [name for name in COLUMNS if name not in table.column_names]
    if missing:
        raise ValueError(f"not a liftbench results file (missing columns: {', '.join(missing[:5])})")
    table = table.select(COLUMNS).cast(SCHEMA)
    return table.to_pandas()


def read_results(results_dir: Path | Iterable[Path]) -> ResultsFolder:
    """All valid rows under one or more folders; corrupt or foreign files are listed, not fatal."""
    dirs = [Path(results_dir)] if isinstance(results_dir, (str, Path)) else [Path(d) for d in results_dir]
    frames, problems = [], []
    for folder in dirs:
        if not folder.exists():
            raise UsageError(f"results folder {str(folder)!r} does not exist")
        for path in result_files(folder):
            try:
                frames.append(read_table(path))
            except Exception as exc:  # corrupt, truncated or foreign: report and go on
                problems.append(f"skipped {path}: {type(exc).__name__}: {exc}")
    frame = pd.concat(frames, ignore_index=True) if frames else rows_to_table([]).to_pandas()
    return ResultsFolder(frame, problems)


def result_status(path: Path) -> str | None:
    """A run file's status: None if there is none, ``failed`` if it cannot be read."""
    try:
        return run_status(path)[0]
    except FileNotFoundError:
        return None
    except Exception:
        return "failed" if Path(path).exists() else None


def write_failed_unless_done(path: Path, write: Callable[[Path], object]) -> str:
    """Put a failed run's file at ``path`` (``write(tmp)`` makes it) unless the run is already done.

    Returns what ``path`` holds afterwards: ``failed``, or the ``ok``/``skipped`` status it kept.
    The file is created with ``link()``, which fails if the name exists; an existing file is replaced
    only if it is failed too, by renaming it aside first and putting it back if an ok landed there in
    between. ok files are written by rename (:func:`liftbench.run.results.replace_atomic`) and never
    checked, so ok always wins: whoever finishes second keeps the first ok. Needs only atomic
    ``link`` and ``rename`` (POSIX, NFS); readers may see no file for an instant while a failed file
    is swapped for a newer failed one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.failed.tmp")
    try:
        write(tmp)
        for _ in range(50):
            try:
                os.link(tmp, path)
                return "failed"
            except FileExistsError:
                pass
            except OSError as exc:  # no hard links here (some FUSE/SMB mounts): best effort
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                    raise
                status = result_status(path)
                if status in DONE:
                    return status
                os.replace(tmp, path)
                return "failed"
            status = result_status(path)
            if status in DONE:
                return status
            if status is None:
                continue  # gone meanwhile: create it
            aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.aside.tmp")
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            moved = result_status(aside)
            if moved in DONE:  # an ok landed between the check and the rename: it goes back
                os.replace(aside, path)
                return moved
            os.unlink(aside)
        raise OSError(f"could not write {path}: it keeps changing")
    finally:
        if tmp.exists():
            tmp.unlink()


def write_result(results_dir: Path, run_key: str, rows: list[Mapping[str, Any]], *, attempt: bool = True,
                 probabilities: pa.Table | None = None) -> str:
    """The one write rule, for every executor: an ``ok`` (or ``skipped``) result replaces whatever is there; a
    ``failed`` one is written only where no ``ok``/``skipped`` result is (:func:`write_failed_unless_done`) — a
    failure that meets a kept result goes to ``.attempts/<key>.parquet`` instead, where ``liftbench status``
    shows it (``attempt=False``: not an attempt — a driver's late word on a job whose result is there — and not
    kept). Returns the status the run's file holds afterwards. The table is built (and so checked against
    the schema) before anything is written; a folder that cannot be written is a usage error naming it."""
    table = rows_to_table(rows)
    path = run_path(results_dir, run_key)
    attempt_path = Path(results_dir) / ATTEMPTS_DIR / f"{run_key}{RUN_SUFFIX}"
    try:
        if probabilities is not None:  # first: the run file's presence means the run is complete
            write_atomic(probabilities, Path(results_dir) / "probabilities" / f"{run_key}{RUN_SUFFIX}")
        if rows[0]["status"] != "failed":
            write_atomic(table, path)
            attempt_path.unlink(missing_ok=True)  # the run is done again: its old failed attempt is history
            return rows[0]["status"]
        kept = write_failed_unless_done(path, lambda tmp: pq.write_table(table, tmp))
        if kept != "failed" and attempt:
            write_atomic(table, attempt_path)
        return kept
    except OSError as exc:
        raise UsageError(f"cannot write the result of run {run_key} to {str(path.parent)!r}: "
                         f"{exc.strerror or exc}") from None  # fmt: skip


def failed_attempts(results_dir: Path) -> dict[str, str]:
    """Run key -> error of the failed reruns whose earlier result was kept (``.attempts/``)."""
    found = {}
    for path in sorted((Path(results_dir) / ATTEMPTS_DIR).glob(f"*{RUN_SUFFIX}")):
        try:
            found[path.stem] = run_status(path)[1]
        except Exception as exc:
            found[path.stem] = f"(unreadable attempt record: {type(exc).__name__})"
    return found


UNREADABLE_DIR = ".unreadable"  # result files that could not be read or failed the schema, moved aside


def run_files(results_dir: Path) -> list[Path]:
    """The run files directly in ``results_dir`` (what ``run`` resumes from and ``status`` counts)."""
    return sorted(Path(results_dir).glob(f"*{RUN_SUFFIX}"))


def check_run_file(path: Path) -> str:
    """The status of one run file, read in full and checked against :data:`SCHEMA` (ValueError if it is not
    a complete liftbench result: unreadable, truncated, a column missing, no rows)."""
    frame = read_table(path)
    if frame.empty:
        raise ValueError("no rows")
    statuses = set(frame["status"])
    if not statuses <= {"ok", "skipped", "failed"}:
        raise ValueError(f"unknown status {sorted(map(str, statuses - {'ok', 'skipped', 'failed'}))[0]!r}")
    return "failed" if "failed" in statuses else frame["status"].iloc[0]


def unreadable_runs(results_dir: Path) -> dict[Path, str]:
    """Run files in ``results_dir`` that are not complete results: path -> why."""
    found = {}
    for path in run_files(results_dir):
        try:
            check_run_file(path)
        except Exception as exc:
            found[path] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return found


def move_aside(path: Path) -> Path:
    """Move a run file that is not a complete result to ``.unreadable/`` (never deleted: it may be the only
    record of something), named with the time it was moved; returns the new path."""
    from datetime import datetime, timezone

    folder = Path(path).parent / UNREADABLE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{Path(path).stem}.{stamp}.{uuid.uuid4().hex[:6]}{RUN_SUFFIX}"
    os.replace(path, target)
    return target

