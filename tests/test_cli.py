"""End-to-end runs of the ``liftbench`` command on tiny data: grids, resuming, bad input, leaderboards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from cli_args import TINY_SYNTHETIC
from medmnist_files import write_medmnist_npz
from repo_root import ROOT

from liftbench.cli import main
from liftbench.run.results import read_results, result_files

QUICK = ["--weights", "random", "--quick", "--iterations", "20", "--warmup", "2", "--no-leaderboard"]



def run_cli(*args: str) -> int:
    return main(list(args))


def test_grid_runs_skips_and_records_everything(tmp_path, capsys):
    out = tmp_path / "study"
    rc = run_cli("run", "--datasets", "synthetic", "--backbones", "vit-tiny-shapes", "--strategies", "2d,acs,pcg", "--seeds", "2", "--results", str(out), *TINY_SYNTHETIC, *QUICK)
    assert rc == 0
    frame = read_results(out).frame
    assert len(result_files(out)) == 6  # 3 strategies x 2 seeds, one file per run
    skipped = frame[frame["status"] == "skipped"]
    assert set(skipped["strategy"]) == {"acs"} and skipped["error"].str.contains("cannot lift a vit").all()
    ok = frame[frame["status"] == "ok"]
    assert set(ok["metric"]) >= {"auc", "acc"} and ok["value"].between(0, 1).all()
    assert (ok["weights"] == "random:0").all() and (ok["schedule"][ok["strategy"] == "pcg"] == "HW,DW,DH,HW").all()
    assert ok["torch_version"].notna().all() and ok["wall_seconds"].gt(0).all()
    probabilities = list((out / "probabilities").glob("*.parquet"))
    assert len(probabilities) == 4 and pd.read_parquet(probabilities[0]).filter(like="p").sum(axis=1).round(5).eq(1).all()
    assert "RANDOM WEIGHTS" in capsys.readouterr().out
    # a second run does nothing, and says so
    assert run_cli("run", "--datasets", "synthetic", "--backbones", "vit-tiny-shapes", "--strategies", "2d,acs,pcg", "--seeds", "2", "--results", str(out), *TINY_SYNTHETIC, *QUICK) == 0
    assert "6 already in" in capsys.readouterr().out
    assert len(result_files(out)) == 6


def test_second_seed_reuses_the_feature_cache(tmp_path, capsys):
    out = tmp_path / "study"
    args = ["run", "--datasets", "synthetic", "--backbones", "vit-tiny-shapes", "--strategies", "pcg", "--results", str(out), *TINY_SYNTHETIC, *QUICK]
    run_cli(*args, "--seeds", "1")
    assert "feature cache" not in capsys.readouterr().out  # the console is calm: one bar and the summary
    run_cli(*args, "--seeds", "2", "-v")
    assert "feature cache hit" in capsys.readouterr().out  # -v: per-run details


def test_killed_run_resumes_with_exactly_one_result_per_run(tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "LIFTBENCH_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "liftbench.cli", "run", "--datasets", "synthetic", "--backbones", "vit-tiny-shapes", "--strategies", "2d,pcg", "--seeds", "4", "--results", str(out), *TINY_SYNTHETIC, *QUICK]
    cmd[cmd.index("20")] = "400"  # longer runs, so the kill lands mid-grid
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.parquet"))) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.name for p in out.glob("*.parquet")}
    assert 2 <= len(done_before) < 8
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{len(done_before)} already in" in result.stdout
    files = result_files(out)
    assert len(files) == 8 and done_before <= {p.name for p in files}
    frame = read_results(out).frame
    assert frame.groupby("run_key")["seed"].nunique().eq(1).all() and frame["run_key"].nunique() == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategies", "pgc"], "unknown strategy 'pgc'; did you mean 'pcg'? available: 2d, 3d, acs, pcm, pcg"),
        (["--backbones", "vit-x*"], "no backbone matches 'vit-x*'"),
        (["--datasets", "organ", "--size", "32"], "dataset 'organ' has no size 32; valid sizes: 28, 64"),
        (["--schedule", "HW,XY"], "unknown plane 'XY'; valid planes: HW, DW, DH"),
        (["--seeds", "many"], "--seeds: invalid seeds 'many'"),
        (["--protocol", "linear", "--opt", "epochs=3"], "option 'epochs' does not apply to protocol(s) linear"),
    ],
)
def test_user_mistakes_exit_2_with_a_clear_message(tmp_path, capsys, args, message):
    assert run_cli("run", "--results", str(tmp_path / "r"), "--weights", "random", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unwritable_results_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert run_cli("run", "--results", str(blocker / "sub"), "--strategies", "2d", *TINY_SYNTHETIC, *QUICK) == 2
    assert "is not writable" in capsys.readouterr().err


def test_missing_pretrained_weights_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert run_cli("run", "--results", str(tmp_path / "r"), "--strategies", "2d", "--weights", "pretrained", *TINY_SYNTHETIC, "--quick") == 2
    err = capsys.readouterr().err
    assert "cannot load pretrained weights for vit_small_patch16_dinov3" in err and "--weights PATH" in err
    assert not list((tmp_path / "r").glob("*.parquet"))


def test_corrupt_file_is_reported_and_nothing_is_lost(tmp_path, capsys):
    out = tmp_path / "study"
    args = ["run", "--datasets", "synthetic", "--backbones", "vit-tiny-shapes", "--strategies", "2d", "--results", str(out), *TINY_SYNTHETIC, *QUICK]
    assert run_cli(*args) == 0
    good = result_files(out)
    (out / "garbage.parquet").write_bytes(b"PAR1 this is not parquet")
    capsys.readouterr()
    assert run_cli("leaderboard", str(out)) == 1
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "garbage.parquet" in captured.err and "Traceback" not in captured.err
    assert "synthetic" in captured.out  # the readable results still render
    assert result_files(out)[0] == good[0] and (out / "garbage.parquet").exists()


def test_featdice_runs_on_the_synthetic_masks(tmp_path):
    out = tmp_path / "dice"
    assert run_cli("run", "--protocol", "featdice", "--datasets", "synthetic", "--backbones", "vit-tiny-shapes", "--strategies", "pcg,3d", "--results", str(out), *TINY_SYNTHETIC, "--weights", "random", "--no-leaderboard") == 0
    frame = read_results(out).frame
    dice = frame[frame["metric"] == "featdice"]
    assert len(dice) == 2 and dice["value"].between(0, 1).all()


def test_medmnist_grid_from_generated_files(tmp_path):
    root = tmp_path / "medmnist"
    for flag in ("organmnist3d", "nodulemnist3d"):
        write_medmnist_npz(root, flag, 28)
    out = tmp_path / "med"
    rc = run_cli("run", "--datasets", "organ,nodule", "--size", "28", "--data-root", str(root), "--backbones", "vit-tiny-shapes", "--weights", "random", "--strategies", "2d,pcg", "--protocol", "linear", "--seeds", "2", "--results", str(out), "--quick", "--iterations", "10", "--warmup", "1", "--no-leaderboard")
    assert rc == 0
    frame = read_results(out).frame
    assert len(result_files(out)) == 8
    test_rows = frame[(frame["split"] == "test")]
    assert set(test_rows["dataset"]) == {"organ", "nodule"} and set(test_rows["metric"]) == {"auc", "acc"}
    assert rc == 0 and len(list((out / "probabilities").glob("*.parquet"))) == 8


def test_missing_medmnist_file_exits_2(tmp_path, capsys):
    rc = run_cli("run", "--datasets", "organ", "--size", "28", "--data-root", str(tmp_path / "none"), "--strategies", "2d", "--results", str(tmp_path / "r"), *QUICK)
    assert rc == 2
    err = capsys.readouterr().err
    assert "organmnist3d.npz" in err and "Traceback" not in err


def test_list_shows_every_kind_with_providers(capsys):
    assert run_cli("list") == 0
    out = capsys.readouterr().out
    for name in ("pcg", "acs", "vits", "resnet50", "organ", "synthetic", "linear", "featdice", "local"):
        assert name in out
    assert "builtin-strategies" in out
    assert max(len(line) for line in out.splitlines()) <= 100  # fits a 100-column terminal
    assert run_cli("list", "colours") == 2
    capsys.readouterr()
    assert run_cli("list", "protocols", "linear") == 0  # one entry in full: provider, options with ranges
    detail = capsys.readouterr().out
    assert "plugin: builtin-protocols (liftbench" in detail and max(len(line) for line in detail.splitlines()) <= 100
    assert next(line for line in detail.splitlines() if line.startswith("lr ")).split()[1:4] == ["float", "0.001", ">"]
    assert run_cli("list", "strategies", "pcm") == 0 and "identical to pcg" in capsys.readouterr().out
    assert run_cli("list", "protocols", "linaer") == 2 and "did you mean 'linear'?" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["md", "latex", "html", "csv"])
def test_leaderboard_formats_on_the_reported_set(fmt, capsys):
    reported = ROOT / "results" / "reported"
    assert run_cli("leaderboard", str(reported), "--format", fmt, "--protocol", "table1-probe") == 0
    out = capsys.readouterr().out
    assert "pcg" in out and "reported" in out
    if fmt == "latex":
        assert "\\toprule" in out and "\\bottomrule" in out


@pytest.mark.skipif(__import__("shutil").which("pdflatex") is None, reason="pdflatex not installed (.ci/run installs it)")
def test_committed_leaderboard_compiles_as_latex(tmp_path):
    results = ROOT / "results"
    assert run_cli("leaderboard", str(results), "--format", "latex", "--out", str(tmp_path / "body.tex")) == 0
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{body.tex}\n\\end{document}\n", encoding="utf-8"
    )
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "doc.tex"], cwd=tmp_path, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
