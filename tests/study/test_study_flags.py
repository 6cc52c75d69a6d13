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
warmup = 2
[grid.protocol_options.finetune]
checkpoint = true
"""



def test_protocol_flag_drops_the_options_only_the_old_protocols_had(tmp_path, capsys):
    assert main(["run", "--study", "demo", "--protocol", "featdice", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "--protocol featdice: dropped what only the study's old protocols used: option iterations, option warmup, " \
        "[leaderboard] protocols and metrics" in out and "plan: " in out
    study = tmp_path / "ft.toml"
    study.write_text(FINETUNE_STUDY % (tmp_path / "out"), encoding="utf-8")
    assert main(["run", "--study", str(study), "--protocol", "linear", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "used: protocol_options.finetune" in out and "option iterations" not in out and "option warmup" not in out  # linear has them
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
    from liftbench.plugin.manager import build_registry
    from liftbench.study.model import parse_text
    from liftbench.study.plan import resolve

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
    assert main(["run", "--device", "cuda:7", "--backbones", "vit-tiny-shapes", "--size", "32", "--dry-run"]) == 2
    err = capsys.readouterr().err  # the local executor would run it here, where there is no such GPU
    assert "--device: device 'cuda:7' is not available on this machine; available here: " in err
    assert main(["run", "--device", "cuda:7", "--executor", "slurm", "--backbones", "vit-tiny-shapes", "--size", "32",
                 "--dry-run"]) == 0  # planned for a cluster's GPU node: no estimate here, but a plan
    assert "no cuda:7 device on this machine: no cost estimate" in capsys.readouterr().out


def test_a_dry_run_checks_the_executor_options(tmp_path, capsys):
    study = tmp_path / "slurm.toml"
    study.write_text('executor = "slurm"\n[executor_options]\npartiton = "gpu"\n[[grid]]\n', encoding="utf-8")
    assert main(["run", "--study", str(study), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "option 'partiton' does not apply to executor 'slurm'; did you mean 'partition'? valid: account" in err
    assert "Traceback" not in err


def test_a_record_reruns_into_its_own_folder_from_anywhere(tmp_path, monkeypatch, capsys):
    """A recorded ``RESULTS/study.toml`` (relative ``results``) run from another directory, or given as its
    folder, runs into the folder it lies in — and its record keeps naming itself as it did."""
    from liftbench.study.model import read_study

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    args = ["run", "--backbones", "vit-tiny-shapes", "--strategies", "2d", "--size", "32", "--weights", "random",
            "--opt", "quick=true", "--opt", "iterations=5", "--opt", "warmup=1", "--dataset-opt", "n_train=9", "--dataset-opt", "n_val=6",
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


SIZES_AND_SCHEDULES = """
name = "sweep"
results = "%s"
[[grid]]
backbones = "vit-tiny-shapes"
strategies = ["2d", "pcg"]
size = [28, 32]
schedule = ["HW,DW,DH,HW", "HW,DH,DW,HW"]
"""


def test_a_grid_of_sizes_and_schedules_plans_their_product_and_its_record_replans_it(tmp_path):
    """2 sizes × (pcg: 2 schedules, 2d: none) = 6 runs, counted as planned; the record keeps the lists, and
    reading it back plans the same run keys (no list reaches runner.plan)."""
    from liftbench.plugin.manager import build_registry
    from liftbench.study.model import parse_text
    from liftbench.study.plan import count_runs, merged, plan_study, resolve
    from liftbench.study.toml_file import dumps

    registry = build_registry()
    study = resolve(parse_text(SIZES_AND_SCHEDULES % (tmp_path / "out"), source="sweep.toml"), registry)
    runs = plan_study(study, registry)
    assert sorted((r.spec.strategy, r.spec.size, r.spec.schedule) for r in runs) == [
        ("2d", 28, ""), ("2d", 32, ""),
        ("pcg", 28, "HW,DH,DW,HW"), ("pcg", 28, "HW,DW,DH,HW"), ("pcg", 32, "HW,DH,DW,HW"), ("pcg", 32, "HW,DW,DH,HW"),
    ]  # fmt: skip
    assert count_runs(study, registry) == (6, "") and study.runs() == 8  # without the registry: every strategy
    text = dumps(study)
    assert 'size = [28, 32]\nweights = "pretrained"\nschedule = ["HW,DW,DH,HW", "HW,DH,DW,HW"]' in text
    again = resolve(parse_text(text, source="study.toml"), registry)
    assert again.grids == study.grids and [r.key for r in plan_study(again, registry)] == [r.key for r in runs]
    one = parse_text(SIZES_AND_SCHEDULES.replace("[28, 32]", "28") % "r", source="one.toml")
    assert merged(one, study).grids == study.grids  # the grid of one size is covered by the grid of both


def test_size_and_schedule_flags_take_several(tmp_path, capsys):
    base = ["run", "--backbones", "vit-tiny-shapes", "--strategies", "2d,pcg", "--results", str(tmp_path / "r"), "--dry-run"]
    assert main([*base, "--size", "28,32"]) == 0
    assert "plan: 4 runs" in capsys.readouterr().out
    assert main([*base, "--size", "28,32", "--schedule", "HW,DW,DH,HW; HW,DH,DW,HW"]) == 0
    assert "plan: 6 runs" in capsys.readouterr().out
    assert main([*base, "--size", "32", "--schedule", "HW,DH,DW,HW"]) == 0  # one schedule: as before
    assert "plan: 2 runs" in capsys.readouterr().out
    assert main([*base, "--size", "28,x"]) == 2
    err = capsys.readouterr().err
    assert "--size: invalid size '28,x': give positive integers separated by commas, e.g. 32,64" in err and "Traceback" not in err
    assert main([*base, "--size", "0"]) == 2
    assert "--size: size must be a positive whole number" in capsys.readouterr().err
    assert main([*base, "--schedule", "HW,XY"]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("size = [32, 0]", "size must be a positive whole number or a list of them"),
        ("size = []", "size is an empty list"),
        ('schedule = ["HW", 3]', "schedule must be a non-empty string, got 3"),
        ('size = "32,x"', "invalid size '32,x': give positive integers separated by commas"),
        ('schedule = " ; "', "invalid schedule ' ; ': give a schedule such as HW,DW,DH,HW"),
    ],
)
def test_bad_size_and_schedule_lists_are_usage_errors(text, message):
    from liftbench.errors import UsageError
    from liftbench.study.model import parse_text

    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        parse_text(f"[[grid]]\n{text}\n", source="bad.toml")


def test_misspelt_option_names_suggest_the_right_one(tmp_path, capsys):
    base = ["run", "--backbones", "vit-tiny-shapes", "--size", "32", "--results", str(tmp_path / "r"), "--dry-run"]
    assert main([*base, "--opt", "iteratons=5"]) == 2
    assert "option 'iteratons' does not apply to protocol(s) linear; did you mean 'iterations'? valid: " in capsys.readouterr().err
    study = tmp_path / "typo.toml"
    study.write_text('[[grid]]\nbackbones = "vit-tiny-shapes"\n[grid.options]\niteratons = 5\n', encoding="utf-8")
    assert main(["run", "--study", str(study), "--dry-run"]) == 2
    assert "did you mean 'iterations'?" in capsys.readouterr().err
    assert main([*base, "--dataset-opt", "n_trian=12"]) == 2
    assert "dataset option 'n_trian' does not apply to dataset(s) synthetic; did you mean 'n_train'? valid: " in capsys.readouterr().err
    assert main(["list", "studie"]) == 2
    assert "unknown kind 'studie'; did you mean 'studies'? valid: strategies, " in capsys.readouterr().err
