"""The ``slurm`` executor and ``liftbench status``.

The first tests need no cluster (options → sbatch lines, grouping, status of a folder). The rest
submit real jobs through the CLI to a live Slurm (``.ci/slurm-up.sh`` starts a one-node cluster on
this machine); without ``sbatch`` and ``SLURM_CONF`` they skip, saying so — unless
``LIFTBENCH_REQUIRE_SLURM=1`` (set by ``.ci/run``), where a missing cluster fails them instead.
``LIFTBENCH_SLURM_TEST_DIR`` puts their results on a folder the compute nodes share (default: pytest's
temporary folder, which a one-node cluster shares).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from submitit.slurm.slurm import _make_sbatch_string

from liftbench.cli import main
from liftbench.commands.status import collect
from liftbench.errors import UsageError
from liftbench.executors import slurm, slurm_jobs
from liftbench.plugins import build_registry
from liftbench.results import result_files, write_run
from liftbench.runner import existing_statuses, plan

GRID = [
    "--datasets", "synthetic", "--size", "32", "--backbones", "vits", "--weights", "random", "--quick",
    "--dataset-opt", "n_train=12", "--dataset-opt", "n_val=6", "--dataset-opt", "n_test=6", "--no-leaderboard",
]

# --------------------------------------------------------------------------- no cluster needed


def test_slurm_options_become_sbatch_lines(tmp_path):
    options = {
        "partition": "gpu", "time": "1-02:00:00", "gpus": "2", "cpus": "8", "mem": "32G", "account": "proj42",
        "qos": "high", "array_parallelism": "10", "extra": ["constraint=a100", "--exclusive", "#SBATCH --mail-type=END"],
    }
    params = slurm.slurm_parameters(options)
    script = _make_sbatch_string(command="python -m x", folder=str(tmp_path), map_count=50, **params)
    for line in (
        "--partition=gpu", "--time=1-02:00:00", "--gpus-per-node=2", "--cpus-per-task=8", "--mem=32G", "--account=proj42",
        "--qos=high", "--array=0-49%10", "--constraint=a100", "#SBATCH --exclusive\n", "--mail-type=END", "--job-name=liftbench",
    ):
        assert line in script, line
    assert slurm.slurm_parameters({})["time"] == slurm.DEFAULT_TIME and slurm.parse_time("90") == 90
    for bad in ({"time": "soon"}, {"cpus": "two"}, {"extra": ["= x"]}):
        with pytest.raises(UsageError):
            slurm.slurm_parameters(bad)


def test_one_array_task_per_feature_cache_group():
    registry = build_registry()
    runs = plan(
        registry, datasets=registry.resolve("dataset", "synthetic"), backbones=registry.resolve("backbone", "vits"),
        strategies=registry.resolve("strategy", "2d,pcg"), protocols=registry.resolve("protocol", "linear,featdice"),
        seeds=[0, 1, 2], size=32, weights="random",
    )
    groups = slurm.group_runs(runs)
    assert len(groups) == 2 and all(len(g) == 6 for g in groups)  # protocols and seeds inside a group
    assert [{r.spec.strategy for r in g} for g in groups] == [{"2d"}, {"pcg"}]
    assert slurm_jobs._expand("12_[0-2,5%2]") == ["12_0", "12_1", "12_2", "12_5"] and slurm_jobs._expand("12_3") == ["12_3"]


def test_slurm_options_need_the_slurm_executor(tmp_path, capsys):
    rc = main(["run", *GRID, "--strategies", "2d", "--results", str(tmp_path / "r"), "--slurm-partition", "gpu"])
    assert rc == 2 and "apply to --executor slurm" in capsys.readouterr().err


def test_slurm_executor_without_sbatch_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)
    rc = main(["run", *GRID, "--strategies", "2d", "--results", str(tmp_path / "r"), "--executor", "slurm"])
    assert rc == 2 and "needs Slurm's sbatch" in capsys.readouterr().err


def _row(key, strategy, seed, status, error=""):
    return {"run_key": key, "kind": "run", "source": "measured", "dataset": "synthetic", "input_size": 32, "backbone": "vits",
            "strategy": strategy, "protocol": "linear", "seed": seed, "status": status, "error": error, "metric": "auc", "value": 0.5}


def test_status_counts_runs_per_cell_without_slurm(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)  # a laptop: no squeue, no sacct
    write_run(tmp_path, "k0", [_row("k0", "2d", 0, "ok")])
    write_run(tmp_path, "k1", [_row("k1", "2d", 1, "failed", "ValueError: boom\nlog: /logs/7_0_0_log.out")])
    write_run(tmp_path, "k2", [_row("k2", "acs", 0, "skipped", "cannot lift")])
    spec = {"dataset": "synthetic", "size": 32, "backbone": "vits", "weights": "random", "strategy": "pcg", "schedule": "HW",
            "protocol": "linear", "seed": 0, "options": "{}", "dataset_options": "{}"}
    slurm_jobs.write_json_atomic(tmp_path / ".jobs" / "k3.json", {"job_id": "7_1", "spec": spec, "submitted_at": "2026-01-01T00:00:00+00:00", "stdout": "/logs/7_1_0_log.out"})
    states = {r["key"]: r["state"] for r in collect(tmp_path)}
    assert states == {"k0": "done", "k1": "failed", "k2": "skipped", "k3": "submitted"}
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4 runs — 1 done, 0 running, 0 queued, 1 submitted, 1 failed, 1 skipped" in out
    assert "seed=1: ValueError: boom" in out and "log: /logs/7_0_0_log.out" in out


# --------------------------------------------------------------------------- a live cluster


def _slurm_problem() -> str:
    if not shutil.which("sbatch"):
        return "Slurm's sbatch is not on PATH"
    if not os.environ.get("SLURM_CONF") and not Path("/etc/slurm/slurm.conf").exists():
        return "SLURM_CONF is not set (start a cluster with .ci/slurm-up.sh and export the SLURM_CONF it prints)"
    try:
        probe = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"sinfo failed: {exc}"
    if probe.returncode != 0 or not probe.stdout.strip():
        return f"the Slurm controller does not answer: {probe.stderr.strip()[:200]}"
    return ""


@pytest.fixture(scope="module")
def cluster():
    problem = _slurm_problem()
    if problem:
        if os.environ.get("LIFTBENCH_REQUIRE_SLURM") == "1":
            pytest.fail(f"LIFTBENCH_REQUIRE_SLURM=1 but no usable Slurm: {problem}")
        pytest.skip(f"no Slurm cluster: {problem}")


@pytest.fixture
def shared(tmp_path, cluster):
    root = os.environ.get("LIFTBENCH_SLURM_TEST_DIR")
    if not root:
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="liftbench-slurm-", dir=root))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _env() -> dict:
    return {**os.environ, "LIFTBENCH_SLURM_POLL": "1", "PYTHONUNBUFFERED": "1"}


def _cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "liftbench.cli", *args], capture_output=True, text=True, timeout=timeout, env=_env())


def _start(*args: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "liftbench.cli", *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=_env())


def _wait(condition, timeout: float, what: str, interval: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _records(results: Path) -> dict[str, dict]:
    return slurm_jobs.read_records(results)


def _statuses(results: Path) -> dict[str, str]:
    return existing_statuses(results)


def _errors(results: Path) -> dict[str, str]:
    return {p.stem: pq.read_table(p, columns=["error"]).column("error")[0].as_py() or "" for p in results.glob("*.parquet")}


def test_grid_completes_through_a_stopped_driver(shared):
    results, cache = shared / "study", shared / "cache"
    args = [
        "run", "--executor", "slurm", *GRID, "--strategies", "2d,pcg", "--seeds", "2", "--iterations", "10",
        "--results", str(results), "--cache-dir", str(cache),
        "--slurm-partition", "debug", "--slurm-time", "15", "--slurm-cpus", "1", "--slurm-mem", "2G",
        "--slurm-array-parallelism", "2", "--slurm-extra", "begin=now+10",  # held in the queue while the driver stops
    ]
    driver = _start(*args, log=shared / "driver1.log")
    records = _wait(lambda: len(_records(results)) == 4 and _records(results), 120, "4 job records")
    driver.send_signal(signal.SIGINT)  # the user stops the driver: the jobs stay queued
    assert driver.wait(60) == 130
    first = (shared / "driver1.log").read_text()
    assert "submitted 4 run(s) as 2 array task(s)" in first and "stay queued or running on the cluster" in first
    job_ids = {r["job_id"] for r in records.values()}
    assert len(job_ids) == 2 and len({r["array_job_id"] for r in records.values()}) == 1  # one array, a task per group
    script = (Path(next(iter(records.values()))["stdout"]).parent / f"{next(iter(records.values()))['array_job_id']}_submission.sh").read_text()
    for line in ("--partition=debug", "--time=15", "--cpus-per-task=1", "--mem=2G", "--array=0-1%2", "--begin=now+10"):
        assert line in script, line

    status = _cli("status", str(results))
    assert status.returncode == 0, status.stderr
    summary = status.stdout.splitlines()[0]
    assert "0 done" in summary and "0 failed" in summary, status.stdout  # all 4 are queued (or just started)

    again = _cli(*args)  # the same command again: watches the queued jobs, submits nothing
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 run(s) already queued or running" in again.stdout and "submitted" not in again.stdout
    assert {r["job_id"] for r in _records(results).values()} == job_ids
    assert "4 runs: 4 done, 0 skipped, 0 failed" in again.stdout
    assert len(result_files(results)) == 4 and set(_statuses(results).values()) == {"ok"}  # exactly one result per run

    status = _cli("status", str(results))
    assert "4 runs — 4 done, 0 running, 0 queued, 0 failed, 0 skipped" in status.stdout
    assert [line.split()[3] for line in status.stdout.splitlines() if line.startswith("synthetic")] == ["2d", "pcg"], status.stdout


def test_cancelled_killed_and_timed_out_jobs_are_recorded_and_retried(shared):
    results, cache = shared / "study", shared / "cache"
    args = ["run", "--executor", "slurm", *GRID, "--strategies", "2d,3d,pcg", "--seeds", "2", "--iterations", "4000",
            "--results", str(results), "--cache-dir", str(cache)]
    driver = _start(*args, log=shared / "driver.log")
    records = _wait(lambda: len(_records(results)) == 6 and _records(results), 120, "6 job records")
    tasks = sorted({record["job_id"]: record["group"] for record in records.values()}.items())
    # each task runs its two seeds in order; once the first seed's result is in, the second is running:
    # stop one task with scancel, SIGKILL one's worker (as the OOM killer would: nothing in the job can
    # record it), and send one the signal submitit asks for before the time limit
    def kill_worker(job):
        log = Path(records[dict(tasks)[job][0]]["stdout"]).read_text()
        os.kill(int(re.search(r"\(pid (\d+)\)", log).group(1)), signal.SIGKILL)

    def scancel(*flags):
        return lambda job: subprocess.run(["scancel", *flags, job], check=True)

    actions = dict(zip([job for job, _ in tasks], (scancel(), kill_worker, scancel("--signal=USR2")), strict=True))
    groups = dict(tasks)

    def act():
        done = set(_statuses(results))
        for job, action in list(actions.items()):
            if groups[job][0] in done:
                action(job)
                del actions[job]
        return not actions

    _wait(act, 400, "the first run of each task")
    assert driver.wait(300) == 1  # failed runs: exit status 1
    log = (shared / "driver.log").read_text()
    statuses, errors = _statuses(results), _errors(results)
    (cancelled, first), (killed, second), (timed_out, third) = tasks
    assert [statuses[g[0]] for g in (first, second, third)] == ["ok"] * 3, log
    assert [statuses[g[1]] for g in (first, second, third)] == ["failed"] * 3, log
    for group, words in ((first, "Slurm stopped the job (SIGTERM"), (second, f"Slurm job {killed} ended"), (third, "time limit")):
        error = errors[group[1]]
        assert words in error and f"log: {records[group[1]]['stdout']}" in error, error
    assert "6 runs: 3 done, 0 skipped, 3 failed" in log, log

    status = _cli("status", str(results))
    assert "6 runs — 3 done, 0 running, 0 queued, 3 failed, 0 skipped" in status.stdout and "SIGTERM" in status.stdout, status.stdout

    plain = _cli(*args)  # without --retry-failed: nothing to do
    assert plain.returncode == 0 and "6 already in" in plain.stdout and "submitted" not in plain.stdout, plain.stdout
    retry = _cli(*args, "--retry-failed")
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert "submitted 3 run(s) as 3 array task(s)" in retry.stdout and "6 runs: 3 done, 0 skipped, 0 failed, 3 already in" in retry.stdout
    assert len(result_files(results)) == 6 and set(_statuses(results).values()) == {"ok"}


def test_a_run_that_raises_in_its_job_is_recorded_as_failed(shared):
    results = shared / "study"
    # the synthetic loader rejects this inside the worker; planning never loads data
    args = ["run", "--executor", "slurm", *GRID, "--dataset-opt", "n_train=oops", "--strategies", "2d", "--seeds", "1",
            "--iterations", "10", "--results", str(results), "--cache-dir", str(shared / "cache")]
    done = _cli(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 runs: 0 done, 0 skipped, 1 failed" in done.stdout and "FAILED" in done.stdout
    (key, error), = _errors(results).items()
    assert _statuses(results)[key] == "failed" and "ValueError" in error and "oops" in error
    log = error.rsplit("log: ", 1)[1].strip()
    assert Path(log).exists() and "liftbench: start" in Path(log).read_text()
    status = _cli("status", str(results))
    assert "1 failed" in status.stdout and "ValueError" in status.stdout and f"log: {log}" in status.stdout, status.stdout
