"""``liftbench run --study`` with flags on top, and what a study file or the command line may get wrong: a
``--protocol`` that replaces the study's protocols (and the options only they had), executor options and
devices checked before a dry run, a recorded study rerun from anywhere."""

from __future__ import annotations

import pytest

from liftbench.cli import main

FINETUNE_STUDY = """
name = "ft"
results = "%s"
[[grid]]
backbones = "vit-tiny-shapes"
strategies = "2d"
protocols = ["finetune"]
size = 32
[grid.options]
iterations = 20
[grid.protocol_options.finetune]
checkpoint = true
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFTBENCH_CACHE", str(tmp_path / "cache"))


def test_protocol_flag_drops_the_options_only_the_old_protocols_had(tmp_path, capsys):
    assert main(["run", "--study", "demo", "--protocol", "featdice", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "--protocol featdice: dropped what only the study's old protocols used: option iterations, option warmup, " \
        "[leaderboard] protocols and metrics" in out and "plan: " in out
    study = tmp_path / "ft.toml"
    study.write_text(FINETUNE_STUDY % (tmp_path / "out"), encoding="utf-8")
    assert main(["run", "--study", str(study), "--protocol", "linear", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "used: protocol_options.finetune" in out and "option iterations" not in out  # linear has it
    # options given on the command line stay strictly checked
    assert main(["run", "--study", str(study), "--protocol", "featdice", "--opt", "iterations=5", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "option 'iterations' does not apply to protocol(s) featdice" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ('protocols = ["linaer"]', "[leaderboard]: unknown protocol 'linaer'; did you mean 'linear'?"),
        ('metrics = ["acu"]', "[leaderboard]: unknown metric 'acu'; did you mean 'auc'? valid: auc, acc, dice, featdice"),
        ('baseline = "2D-slice"', "[leaderboard]: unknown strategy '2D-slice'; available: 2d, 3d"),
    ],
)
def test_the_leaderboard_layout_is_checked_against_the_registry(tmp_path, capsys, layout, message):
    study = tmp_path / "lb.toml"
    study.write_text(f'[leaderboard]\n{layout}\n[[grid]]\nbackbones = "vit-tiny-shapes"\n', encoding="utf-8")
    assert main(["run", "--study", str(study), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"study 'lb': {message}" in err and "Traceback" not in err


def test_the_layout_records_canonical_names(tmp_path):
    from liftbench.plugins import build_registry
    from liftbench.study import parse_text
    from liftbench.study_plan import resolve

    text = '[leaderboard]\nprotocols = ["probe"]\nbaseline = "planecycle"\n[[grid]]\n'
    layout = resolve(parse_text(text, source="x.toml"), build_registry()).leaderboard
    assert layout.protocols == ("linear",) and layout.baseline == "pcg"


def test_a_typod_device_is_a_usage_error(tmp_path, capsys):
    assert main(["run", "--device", "cdua", "--dry-run"]) == 2
    assert "--device: invalid device 'cdua'; valid: cpu, cuda, cuda:N" in capsys.readouterr().err
    study = tmp_path / "dev.toml"
    study.write_text('device = "cdua"\n[[grid]]\n', encoding="utf-8")
    assert main(["run", "--study", str(study), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "invalid device 'cdua'" in err and "Traceback" not in err
    assert main(["run", "--device", "cuda:1", "--backbones", "vit-tiny-shapes", "--size", "32", "--dry-run"]) == 0


def test_a_dry_run_checks_the_executor_options(tmp_path, capsys):
    study = tmp_path / "slurm.toml"
    study.write_text('executor = "slurm"\n[executor_options]\npartiton = "gpu"\n[[grid]]\n', encoding="utf-8")
    assert main(["run", "--study", str(study), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "option 'partiton' does not apply to executor 'slurm'; valid: account" in err and "Traceback" not in err


def test_a_record_reruns_into_its_own_folder_from_anywhere(tmp_path, monkeypatch, capsys):
    """A recorded ``RESULTS/study.toml`` (relative ``results``) run from another directory, or given as its
    folder, runs into the folder it lies in — and its record keeps naming itself as it did."""
    from liftbench.study import read_study

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    args = ["run", "--backbones", "vit-tiny-shapes", "--strategies", "2d", "--size", "32", "--weights", "random",
            "--opt", "quick=true", "--opt", "iterations=5", "--dataset-opt", "n_train=9", "--dataset-opt", "n_val=6",
            "--dataset-opt", "n_test=6", "--results", "out", "--no-leaderboard"]  # fmt: skip
    assert main(args) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    for given in ("../project/out/study.toml", "../project/out/", "../project/out"):
        assert main(["run", "--study", given, "--dry-run"]) == 0
        assert "1 already in ../project/out/" in capsys.readouterr().out, given
    assert main(["run", "--study", "../project/out", "--no-leaderboard"]) == 0
    assert not (elsewhere / "out").exists() and read_study(project / "out" / "study.toml").results == "out"
    assert main(["run", "--study", str(tmp_path), "--dry-run"]) == 2
    assert "is a folder without a study.toml" in capsys.readouterr().err


def test_a_broken_pipe_is_not_a_traceback():
    import subprocess
    import sys

    # a command printing more than a pipe holds (64 KiB), to a reader that stops after a line: `liftbench status | head`
    code = "import liftbench.cli as c; c.main = lambda: [print('x' * 999) for _ in range(999)] and 0; c.entry()"
    reader = "import sys; sys.stdin.readline()"  # reads one line and goes
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    subprocess.run([sys.executable, "-c", reader], stdin=writer.stdout, check=True)
    writer.stdout.close()
    assert b"Traceback" not in writer.stderr.read() and writer.wait() == 0
