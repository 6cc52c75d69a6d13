"""The ``slurm`` executor and ``liftbench status``.

The first tests need no cluster (options → sbatch lines, grouping, status of a folder). The rest
submit real jobs through the CLI to a live Slurm (``.ci/slurm-up.sh`` starts a one-node cluster on
this machine); without ``sbatch`` and ``SLURM_CONF`` they skip, saying so — unless
``LIFTBENCH_REQUIRE_SLURM=1`` (set by ``.ci/run``), where a missing cluster fails them instead.
``LIFTBENCH_SLURM_TEST_DIR`` puts their results on a folder the compute nodes share (default: pytest's
temporary folder, which a one-node cluster shares).
"""

from __future__ import annotations

import json
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
from liftbench.plugin.manager import build_registry
from liftbench.run.executors import slurm, slurm_jobs
from liftbench.run.results import ATTEMPTS_DIR, result_files, write_run
from liftbench.run.runner import ExecutionContext, existing_statuses
from liftbench.study.grid_runs import plan

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
    assert rc == 2 and "to --executor slurm" in capsys.readouterr().err


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


def test_a_failed_row_never_replaces_an_ok_result(tmp_path):
    registry = build_registry()
    (run,) = plan(
        registry, datasets=registry.resolve("dataset", "synthetic"), backbones=registry.resolve("backbone", "vits"),
        strategies=registry.resolve("strategy", "2d"), protocols=registry.resolve("protocol", "linear"), seeds=[0], size=32, weights="random",
    )
    assert slurm.write_failed(tmp_path, run.key, [_row(run.key, "2d", 0, "failed", "first")]) == "failed"  # no file: created
    assert slurm.write_failed(tmp_path, run.key, [_row(run.key, "2d", 0, "failed", "second")]) == "failed"  # failed: replaced
    assert _errors(tmp_path)[run.key] == "second"
    write_run(tmp_path, run.key, [_row(run.key, "2d", 0, "ok")])  # ok replaces failed
    ctx = ExecutionContext(registry=registry, results_dir=tmp_path, cache_dir=tmp_path / "cache", log=lambda m: None)
    assert ctx.record_failure(run, "Slurm job 10 completed without writing this run's result") == "ok"  # the driver, late
    assert ctx.counts == {"ok": 1} and _statuses(tmp_path) == {run.key: "ok"}

    # a worker writing ok while others write failed rows, all at once: ok always survives
    import threading

    for attempt in range(5):
        write_run(tmp_path, run.key, [_row(run.key, "2d", 0, "failed", "old")])
        go = threading.Barrier(5)

        def failer(n, go=go):
            go.wait()
            for i in range(10):
                slurm.write_failed(tmp_path, run.key, [_row(run.key, "2d", 0, "failed", f"{n}.{i}")])

        def finisher(go=go, delay=0.002 * attempt):
            go.wait()
            time.sleep(delay)
            write_run(tmp_path, run.key, [_row(run.key, "2d", 0, "ok")])

        threads = [threading.Thread(target=failer, args=(n,)) for n in range(4)] + [threading.Thread(target=finisher)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert _statuses(tmp_path) == {run.key: "ok"}, attempt
    leftover = [p.name for p in tmp_path.iterdir() if p.name.startswith(".") and p.name != ATTEMPTS_DIR]
    assert leftover == []  # no temporaries left (.attempts records the failures that met the ok result)


def test_unknown_is_not_gone_and_reasons_name_the_state(tmp_path):
    answer = slurm_jobs.SlurmAnswer(
        squeue={"5_0": slurm_jobs._squeue_state("FAILED", "NonZeroExitCode", "liftbench-a"), "6_0": slurm_jobs._squeue_state("PENDING", "JobHeldUser", "x")},
        sacct={"7_0": slurm_jobs._sacct_state("CANCELLED by 0", "0:15", "liftbench-c")}, squeue_ok=True, sacct_ok=False,
        problems=["sacct exited 1: Socket timed out"],
    )
    assert answer.judge("5_0", "liftbench-a")[0] == "unknown"  # squeue saw it end: not final until sacct says so
    assert answer.judge("6_0", "x")[0] == "queued" and answer.judge("7_0", "liftbench-c")[0] == "ended"
    assert answer.judge("7_0", "liftbench-other")[0] == "unknown"  # a reused job id is not our job
    assert answer.judge("8_0")[0] == "unknown" and "Socket timed out" in answer.why_unknown()
    answer.accounting = False  # a cluster without accounting: squeue's end is all there is
    phase, state = answer.judge("5_0", "liftbench-a")
    reason = slurm_jobs.ended_reason({"job_id": "5_0", "stdout": str(tmp_path / "5_0_0_log.out")}, state)
    assert phase == "ended" and "ended FAILED (NonZeroExitCode)" in reason
    assert "(no log: the task never started)" in reason and "log: /" not in reason  # no path to a log that does not exist


def test_driver_locks_tell_live_drivers_from_dead_ones(tmp_path):
    lock = slurm_jobs.DriverLock(tmp_path).start()
    assert slurm_jobs.driver_alive(tmp_path, lock.info)  # held (flock is per open file: this process sees it too)
    lock.close()
    assert not slurm_jobs.driver_alive(tmp_path, lock.info) and not slurm_jobs.driver_alive(tmp_path, None)
    code = "import sys, time; from liftbench.run.executors.slurm_jobs import DriverLock; DriverLock(sys.argv[1]).start(); print('up', flush=True); time.sleep(60)"
    other = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert other.stdout.readline().strip() == "up"
    (path,) = (tmp_path / ".jobs" / "drivers").glob("*.json")
    info = json.loads(path.read_text())
    assert slurm_jobs.driver_alive(tmp_path, info) and info["pid"] == other.pid
    other.kill()  # however it dies, its lock goes with it
    other.wait()
    assert not slurm_jobs.driver_alive(tmp_path, info)


def test_a_stop_signal_that_library_code_swallows_is_still_recorded():
    """scancel's TERM raised inside code that swallows it (or turns it into another error), and srun's
    forwarded second TERM: the worker's watchdog records the stop of the run in progress and the runs
    after it, then ends the process, instead of the run going on until Slurm's SIGKILL."""
    code = """if True:
        import os, signal, time
        from types import SimpleNamespace
        from liftbench.run.executors import slurm
        class Ctx:
            def record_failure(self, run, note):
                print("recorded", run.key, note.splitlines()[0], flush=True)
                return "failed"
        stop = slurm._StopWatch({}, "")
        stop.ctx, stop.runs, stop.index = Ctx(), [SimpleNamespace(key="done"), SimpleNamespace(key="now")], 1
        stop.install()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        except BaseException:
            pass  # lost on its way
        os.kill(os.getpid(), signal.SIGTERM)  # the second TERM is ignored
        time.sleep(10)
        print("the run went on", flush=True)
    """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "recorded now Slurm stopped the job (SIGTERM" in proc.stdout and "recorded done" not in proc.stdout
    assert "the run went on" not in proc.stdout


def test_a_result_that_lands_while_slurm_is_slow_is_counted_never_resubmitted(tmp_path, monkeypatch):
    """Issue #17, without a cluster: the runner listed the folder; then one run's ok file landed before
    the driver looked, the other's while squeue was hanging. Nothing is submitted, both count as ok,
    and no failed row replaces them when Slurm finally reports the job over."""
    registry = build_registry()
    runs = plan(
        registry, datasets=registry.resolve("dataset", "synthetic"), backbones=registry.resolve("backbone", "vits"),
        strategies=registry.resolve("strategy", "2d"), protocols=registry.resolve("protocol", "linear"), seeds=[0, 1], size=32, weights="random",
    )
    early, late = runs
    for run in runs:  # both submitted by a driver that has gone: job 5, held
        slurm_jobs.write_record(tmp_path, {"run_key": run.key, "job_id": "5_0", "job_name": "liftbench-t", "state": "submitted",
                                           "submitted_at": slurm_jobs.now_iso(), "stdout": str(tmp_path / "nolog"), "spec": {},
                                           "driver": {"id": "gone", "pid": 1, "host": "h", "since": "then"}})
    write_run(tmp_path, early.key, [_row(early.key, "2d", 0, "ok")])
    answers = []

    def query(job_ids):
        answers.append(sorted(job_ids))
        if len(answers) == 1:  # squeue hangs; meanwhile the job finishes the other run
            write_run(tmp_path, late.key, [_row(late.key, "2d", 1, "ok")])
            return slurm_jobs.SlurmAnswer(problems=["squeue gave no answer within 60 s"], sacct_ok=True)
        return slurm_jobs.SlurmAnswer(sacct={"5_0": slurm_jobs._sacct_state("COMPLETED", "0:0", "liftbench-t")}, squeue_ok=True, sacct_ok=True)

    def no_sbatch(self):
        assert not self.plans, "submitted a run that has a job"

    monkeypatch.setattr(slurm.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(slurm, "query_jobs", query)
    monkeypatch.setattr(slurm._Driver, "_submit", no_sbatch)
    logs = []
    ctx = ExecutionContext(registry=registry, results_dir=tmp_path, cache_dir=tmp_path / "cache", log=logs.append,
                           executor_options={"poll": 0.2})
    slurm.execute(runs, ctx)
    assert ctx.counts == {"ok": 2} and _statuses(tmp_path) == {early.key: "ok", late.key: "ok"}, logs
    assert answers == [["5_0"]]  # only the late run was still waited for; the early one counted at once
    assert "gone" not in json.dumps(slurm_jobs.read_record(tmp_path, late.key)["driver"])  # taken over from the dead driver


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


def _env(extra: dict | None = None) -> dict:
    return {**os.environ, "LIFTBENCH_SLURM_POLL": "1", "PYTHONUNBUFFERED": "1", **(extra or {})}


def _cli(*args: str, timeout: float = 400, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "liftbench.cli", *args], capture_output=True, text=True, timeout=timeout, env=_env(env))


def _start(*args: str, log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "liftbench.cli", *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=_env(env))


HANG = "#!/bin/sh\nexec sleep 30\n"  # a busy controller: no answer in time
FAIL = '#!/bin/sh\necho "$(basename $0): error: Socket timed out on send/recv operation" >&2\nexit 1\n'


def _busy_slurm(folder: Path, **scripts: str) -> dict:
    """Environment whose PATH starts with stand-ins for Slurm commands (``squeue=HANG``, ``sacct=FAIL``)."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, script in scripts.items():
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


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
        "run", "--executor", "slurm", *GRID, "--strategies", "2d,pcg", "--seeds", "2", "--iterations", "10", "--warmup", "1",
        "--results", str(results), "--cache-dir", str(cache),
        "--slurm-partition", "debug", "--slurm-time", "15", "--slurm-cpus", "1", "--slurm-mem", "2G",
        "--slurm-array-parallelism", "2", "--slurm-extra", "begin=now+10",  # held in the queue while the driver stops
    ]
    driver = _start(*args, log=shared / "driver1.log")
    records = _wait(lambda: len(_records(results)) == 4 and all(r["job_id"] for r in _records(results).values()) and _records(results),
                    120, "4 job records")
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
    assert "4 run(s) already submitted" in again.stdout and "slurm: submitted" not in again.stdout
    assert {r["job_id"] for r in _records(results).values()} == job_ids
    assert "4 runs: 4 done, 0 skipped, 0 failed" in again.stdout
    assert len(result_files(results)) == 4 and set(_statuses(results).values()) == {"ok"}  # exactly one result per run

    status = _cli("status", str(results))
    assert "4 runs — 4 done, 0 running, 0 queued, 0 failed, 0 skipped" in status.stdout
    assert [line.split()[3] for line in status.stdout.splitlines() if line.startswith("synthetic")] == ["2d", "pcg"], status.stdout


def test_cancelled_killed_and_timed_out_jobs_are_recorded_and_retried(shared):
    results, cache = shared / "study", shared / "cache"
    args = ["run", "--executor", "slurm", *GRID, "--strategies", "2d,3d,pcg", "--seeds", "2", "--iterations", "1500", "--slurm-cpus", "1",
            "--results", str(results), "--cache-dir", str(cache)]
    driver = _start(*args, log=shared / "driver.log")
    # records are written before sbatch answers: wait until all six carry their job id
    records = _wait(lambda: (r := _records(results)) and len(r) == 6 and all(x.get("job_id") for x in r.values()) and r,
                    120, "6 job records with job ids")
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
    # the worker cannot write its feature cache (a folder below a file): the run raises inside the job, while
    # planning (which reads the data and the weights, never the cache) passes
    (shared / "a-file").write_text("not a folder")
    args = ["run", "--executor", "slurm", *GRID, "--strategies", "2d", "--seeds", "1",
            "--iterations", "10", "--warmup", "1", "--results", str(results), "--cache-dir", str(shared / "a-file" / "cache")]
    done = _cli(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 runs: 0 done, 0 skipped, 1 failed" in done.stdout and "FAILED" in done.stdout
    (key, error), = _errors(results).items()
    assert _statuses(results)[key] == "failed" and "NotADirectoryError" in error and "a-file" in error
    log = error.rsplit("log: ", 1)[1].strip()
    assert Path(log).exists() and "liftbench: start" in Path(log).read_text()
    # the job that wrote the failure may still be winding down in squeue for a moment (shown as running)
    _wait(lambda: "1 running" not in _cli("status", str(results)).stdout, 60, "the job to leave squeue", interval=1)
    status = _cli("status", str(results))
    assert "1 failed" in status.stdout and "NotADirectoryError" in status.stdout and f"log: {log}" in status.stdout, status.stdout


def _submissions(results: Path) -> list[Path]:
    """Every sbatch submitit made for this folder leaves one script in the logs folder."""
    return sorted((results / ".jobs" / "logs").glob("*_submission.sh"))


def _held(results: Path, cache: Path, seeds: str = "2") -> list[str]:
    return ["run", "--executor", "slurm", *GRID, "--strategies", "2d", "--seeds", seeds, "--iterations", "10", "--warmup", "1",
            "--results", str(results), "--cache-dir", str(cache), "--slurm-time", "10", "--slurm-cpus", "1",
            "--slurm-extra", "hold"]  # held in the queue until the test releases it


def test_a_rerun_over_a_held_job_never_submits_twice_nor_fails_its_results(shared):
    """Issue #17: a driver dies between sbatch and recording the job id; the same command is run again
    while the job is held and squeue hangs (a busy cluster); a third copy starts beside it, and the
    second is killed (a stale driver). One submission in all, and both runs end ok."""
    results = shared / "study"
    args = _held(results, shared / "cache")
    crash = ("import os, sys; from liftbench.run.executors import slurm; slurm._Driver._fill_in = lambda *a: os._exit(9); "
             "from liftbench.cli import main; sys.exit(main(sys.argv[1:]))")
    first = subprocess.run([sys.executable, "-c", crash, *args], capture_output=True, text=True, timeout=120, env=_env())
    assert first.returncode == 9, first.stdout + first.stderr
    records = _records(results)
    assert len(records) == 2 and {(r["state"], r["job_id"]) for r in records.values()} == {("submitting", "")}, records
    assert len(_submissions(results)) == 1

    busy = {**_busy_slurm(shared, squeue=HANG), "LIFTBENCH_SLURM_QUERY_TIMEOUT": "2"}
    second = _start(*args, log=shared / "driver2.log", env=busy)
    records = _wait(lambda: all(r["job_id"] for r in _records(results).values()) and _records(results), 90, "the job found by its name")
    third = _start(*args, log=shared / "driver3.log", env=busy)
    log3 = lambda: (shared / "driver3.log").read_text()  # noqa: E731
    _wait(lambda: f"being watched by driver pid {second.pid} on host" in log3(), 90, "driver 3 to leave the runs to driver 2")
    second.kill()  # driver 2 dies without a word: driver 3 takes its runs over
    second.wait()
    _wait(lambda: "is gone; this driver watches its 2 run(s) now" in log3(), 60, "driver 3 to take over")
    (job,) = {r["array_job_id"] for r in records.values()}
    subprocess.run(["scontrol", "release", job], check=True)
    assert third.wait(180) == 0, log3()
    log2 = (shared / "driver2.log").read_text()
    assert f"did not finish recording is job {job}" in log2, log2
    assert "squeue gave no answer within 2 s" in log3() and "slurm: submitted" not in log2 + log3() and "FAILED" not in log3()
    assert "2 runs: 2 done, 0 skipped, 0 failed" in log3()
    assert len(_submissions(results)) == 1 and set(_statuses(results).values()) == {"ok"} and len(_statuses(results)) == 2


def test_a_worker_that_finishes_after_its_driver_gave_up_keeps_its_result(shared):
    """Two drivers start at once (one submits, the other waits for it); squeue and sacct fail, so
    after LIFTBENCH_SLURM_UNKNOWN_TIMEOUT the owner records both runs as failed. The held job then runs
    and its ok results replace those rows."""
    results = shared / "study"
    args = _held(results, shared / "cache")
    down = {**_busy_slurm(shared, squeue=FAIL, sacct=FAIL), "LIFTBENCH_SLURM_UNKNOWN_TIMEOUT": "2"}
    drivers = [_start(*args, log=shared / f"driver{n}.log", env=down) for n in (1, 2)]
    assert [d.wait(120) for d in drivers] == [1, 1]
    logs = [(shared / f"driver{n}.log").read_text() for n in (1, 2)]
    owner = 0 if "slurm: submitted" in logs[0] else 1
    assert "slurm: submitted 2 run(s)" in logs[owner] and "slurm: submitted" not in logs[1 - owner], logs
    assert f"being watched by driver pid {drivers[owner].pid}" in logs[1 - owner], logs[1 - owner]
    assert "Slurm gives no state for job" in logs[owner] and "sacct exited 1: sacct: error: Socket timed out" in logs[owner]
    assert all("2 runs: 0 done, 0 skipped, 2 failed" in log for log in logs)
    assert len(_submissions(results)) == 1
    for error in _errors(results).values():
        assert "given up by the driver" in error and "(no log: the task never started)" in error and "log: /" not in error, error

    (job,) = {r["array_job_id"] for r in _records(results).values()}
    status = _cli("status", str(results))  # the real squeue again: the job behind the failed rows is queued
    assert "2 runs — 0 done, 0 running, 2 queued, 0 failed" in status.stdout, status.stdout
    subprocess.run(["scontrol", "release", job], check=True)
    _wait(lambda: list(_statuses(results).values()) == ["ok", "ok"], 120, "the late worker's results")
    status = _cli("status", str(results))
    assert "2 runs — 2 done, 0 running, 0 queued, 0 failed" in status.stdout, status.stdout
