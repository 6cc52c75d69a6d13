"""What a result row may claim: failures are failures, weights are identified, provenance and memory
are the run's own. Each test runs the real runner in process on tiny models and the synthetic set."""

from __future__ import annotations

import subprocess
import sys

import pytest
from repo_root import ROOT

from liftbench import hookimpl
from liftbench.errors import CannotLiftError
from liftbench.lifting.base import Lifted
from liftbench.run.provenance import source_revision
from liftbench.run.results import read_results
from liftbench.run.runner import ExecutionContext, execute
from liftbench.study.grid_runs import plan
from liftbench.testing import registry_with

TINY_DATA = {"n_train": 9, "n_val": 6, "n_test": 6}
QUICK = {"iterations": 6, "warmup": 1, "batch_size": 3}


class GivesUpMidRun(Lifted):
    """A lifter that accepts the model and then finds, while running, a layer it cannot lift."""

    def forward(self, volumes):
        raise CannotLiftError("layer 'blocks.1.attn' cannot be lifted (found while running)")


class Fixtures:
    @hookimpl
    def liftbench_register_strategies(self, registrar):
        registrar.add("gives-up", lifters={"vit": f"{__name__}:GivesUpMidRun"}, description="raises while running")


@pytest.fixture(scope="module")
def integrity_registry():
    return registry_with(("integrity-fixtures", Fixtures()))


def _run(integrity_registry, tmp_path, *, strategies, weights="random", data=TINY_DATA, options=QUICK, seeds=(0,)):
    runs = plan(
        integrity_registry, datasets=integrity_registry.resolve("dataset", "synthetic"), backbones=integrity_registry.resolve("backbone", "tiny-vit"),
        strategies=integrity_registry.resolve("strategy", strategies), protocols=integrity_registry.resolve("protocol", "linear"),
        seeds=seeds, size=32, weights=weights, options=dict(options), dataset_options=dict(data),
    )
    ctx = ExecutionContext(registry=integrity_registry, results_dir=tmp_path / "out", cache_dir=tmp_path / "cache", log=lambda _: None)
    execute(runs, integrity_registry.get("executor", "local"), ctx)
    return read_results(tmp_path / "out").frame, ctx.counts


def test_a_lifter_giving_up_during_a_run_is_failed_not_skipped(integrity_registry, tmp_path):
    frame, counts = _run(integrity_registry, tmp_path, strategies="gives-up,acs")
    by_strategy = frame.groupby("strategy")["status"].first().to_dict()
    assert by_strategy == {"gives-up": "failed", "acs": "skipped"}  # acs on a ViT is known impossible before running
    assert counts["failed"] == 1 and "found while running" in frame.loc[frame["strategy"] == "gives-up", "error"].iloc[0]


def test_cli_exits_1_when_a_run_raised(integrity_registry, tmp_path, monkeypatch, capsys):
    from liftbench import cli
    from liftbench.plugin import manager as plugins

    monkeypatch.setattr(plugins, "build_registry", lambda disabled=(): integrity_registry)
    rc = cli.main(["run", "--datasets", "synthetic", "--backbones", "tiny-vit", "--strategies", "gives-up", "--weights", "random",
                   "--size", "32", "--iterations", "3", "--warmup", "1", "--results", str(tmp_path / "o"),
                   "--cache-dir", str(tmp_path / "c"), "--no-leaderboard"])  # fmt: skip
    assert rc == 1 and "1 failed" in capsys.readouterr().out


def test_an_undefined_validation_auc_fails_the_run_with_the_reason(integrity_registry, tmp_path):
    """One validation volume holds one class: AUC is undefined, so no epoch can be selected. The run must
    fail saying so — not return the untrained head with a val AUC of -inf."""
    frame, counts = _run(integrity_registry, tmp_path, strategies="2d", data={**TINY_DATA, "n_val": 1})
    assert counts["failed"] == 1 and counts["ok"] == 0
    error = frame["error"].iloc[0]
    assert "validation AUC is undefined" in error and "1 distinct label" in error


def test_random_weights_are_seeded_and_their_sha256_keys_rows_and_feature_cache(integrity_registry, tmp_path):
    first, _ = _run(integrity_registry, tmp_path / "a", strategies="2d", weights="random")
    again, _ = _run(integrity_registry, tmp_path / "b", strategies="2d", weights="random:0")
    other, _ = _run(integrity_registry, tmp_path / "c", strategies="2d", weights="random:5")
    sha = {name: f["weights_sha256"].unique().tolist() for name, f in (("first", first), ("again", again), ("other", other))}
    assert all(len(v) == 1 and len(v[0]) == 64 for v in sha.values())
    assert sha["first"] == sha["again"] != sha["other"]
    assert set(first["weights"]) == {"random:0"} and set(other["weights"]) == {"random:5"}
    test_auc = lambda f: f[(f["split"] == "test") & (f["metric"] == "auc")]["value"].iloc[0]  # noqa: E731
    assert test_auc(first) == test_auc(again)  # same seed, same weights, same numbers


def test_feature_cache_is_not_shared_between_two_random_inits(integrity_registry, tmp_path):
    cache = tmp_path / "shared-cache"
    for weights in ("random:1", "random:2"):
        (tmp_path / weights.replace(":", "-")).mkdir()
        runs = plan(integrity_registry, datasets=integrity_registry.resolve("dataset", "synthetic"), backbones=integrity_registry.resolve("backbone", "tiny-vit"),
                    strategies=integrity_registry.resolve("strategy", "2d"), protocols=integrity_registry.resolve("protocol", "linear"),
                    seeds=(0,), size=32, weights=weights, options=dict(QUICK), dataset_options=dict(TINY_DATA))  # fmt: skip
        ctx = ExecutionContext(registry=integrity_registry, results_dir=tmp_path / weights.replace(":", "-"), cache_dir=cache, log=lambda _: None)
        execute(runs, integrity_registry.get("executor", "local"), ctx)
    assert len(list((cache / "features").glob("*.pt"))) == 2


def test_provenance_is_liftbench_source_commit_wherever_the_command_runs(tmp_path):
    """Run from an unrelated git repository: the row must carry liftbench's commit, not that folder's."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    script = "from liftbench.run.provenance import provenance; p = provenance('cpu'); print(p['git_commit'], p['git_dirty'])"
    out = subprocess.run([sys.executable, "-c", script], cwd=other, capture_output=True, text=True, timeout=120, check=True)
    commit, dirty = out.stdout.split()
    expected, expected_dirty = source_revision()
    assert commit == (expected or "") and dirty == str(expected_dirty)
    if expected:  # a checkout: the commit is a real one of liftbench's repository
        top = ROOT
        assert subprocess.run(["git", "-C", str(top), "cat-file", "-e", commit], check=False).returncode == 0


def test_peak_memory_is_each_runs_own(integrity_registry, tmp_path):
    """A 1 GiB spike before the grid is the process's peak so far; the run's recorded peak must not
    include it (a lifetime maximum would), and must still count what the run holds resident."""
    import mmap

    from liftbench.run.memory import RunPeakMemory, reset_rss_peak, status_kb

    if not reset_rss_peak():
        pytest.skip("this kernel does not allow resetting the resident-set high-water mark")
    with RunPeakMemory("cpu") as spike:
        ballast = mmap.mmap(-1, 1 << 30)  # 1 GiB, touched page by page, then handed back to the kernel
        for offset in range(0, len(ballast), mmap.PAGESIZE):
            ballast[offset] = 1
        ballast.close()
    resident = status_kb("VmRSS") / 1024.0
    frame, _ = _run(integrity_registry, tmp_path, strategies="2d")
    run_peak = frame["peak_memory_mb"].iloc[0]
    assert spike.mb > resident + 1000
    assert resident * 0.9 < run_peak < spike.mb - 500, (resident, run_peak, spike.mb)
