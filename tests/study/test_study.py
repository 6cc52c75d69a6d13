"""Studies as files: the format read and written back, the built-in studies, ``liftbench run --study`` with
flags on top, the study every results folder records, lazy name checks, and plugins registering studies."""

from __future__ import annotations

from dataclasses import replace

import pytest
from repo_root import ROOT

from liftbench import hookimpl
from liftbench.cli import main
from liftbench.errors import UsageError
from liftbench.plugin.manager import build_registry
from liftbench.study.model import Grid, Layout, Study, parse_text, read_study, tomllib
from liftbench.study.plan import count_runs, merged, plan_study, resolve
from liftbench.study.toml_file import dumps

FULL = """
name = "full"
description = "every key once"
results = "results/full"
executor = "local"
device = "cpu"

[leaderboard]
protocols = ["linear", "featdice"]
metrics = ["auc", "acc"]
baseline = "2d"
reported = true

[[grid]]
datasets = "synthetic"
backbones = ["vit-tiny-shapes", "resnet-*"]
strategies = ["2d", "planecycle"]
protocols = ["linear", "featdice"]
seeds = [0, 3]
size = 32
weights = "random:7"
schedule = "HW,DW"
options = { iterations = "20", warmup = 2 }
dataset_options = { n_train = 12 }

[grid.protocol_options.featdice]
threshold = 0.8

[[grid]]
strategies = "all"
seeds = 2
"""


@pytest.fixture(scope="module")
def installed_registry():
    return build_registry()



def test_a_full_study_file_is_read_resolved_and_written_back_identically(installed_registry):
    study = parse_text(FULL, source="full.toml")
    assert study.leaderboard == Layout(("linear", "featdice"), ("auc", "acc"), "2d", True)
    first, second = study.grids
    assert first.seeds == (0, 3) and first.size == 32 and first.protocol_options == {"featdice": {"threshold": 0.8}}
    assert second == Grid(strategies=("all",), seeds=(0, 1))  # what is left out takes the command line's defaults
    done = resolve(study, installed_registry)
    assert done.grids[0].backbones == ("vit-tiny-shapes", "resnet-tiny-shapes")  # globs and aliases resolved
    assert done.grids[0].strategies == ("2d", "pcg") and done.grids[0].options == {"iterations": 20, "warmup": 2}  # cast
    assert done.grids[1].strategies[:5] == ("2d", "3d", "acs", "pcm", "pcg")
    text = dumps(done)
    again = parse_text(text)
    assert replace(again, source="") == replace(done, source="") and dumps(again) == text  # a fixed point
    assert tomllib.loads(text)["grid"][0]["protocol_options"] == {"featdice": {"threshold": 0.8}}


def test_per_protocol_options_reach_only_their_protocol(installed_registry):
    study = resolve(parse_text(FULL), installed_registry)
    runs = plan_study(replace(study, grids=study.grids[:1]), installed_registry)
    import json

    thresholds = {r.spec.protocol: json.loads(r.spec.options).get("threshold") for r in runs}
    assert thresholds["featdice"] == 0.8 and thresholds["linear"] is None
    assert len(runs) == 1 * 2 * 2 * 2 * 2  # datasets x backbones x strategies x protocols x seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[grid]]\ndatsets = ["synthetic"]', "unknown key 'datsets'; did you mean 'datasets'?"),
        ('nmae = "x"\n[[grid]]', "unknown key 'nmae'; did you mean 'name'?"),
        ("[[grid]]\nseeds = 0", "invalid seeds 0: a count runs seeds 0..N-1 and must be in 1..10000"),
        ('[[grid]]\nseeds = "many"', "invalid seeds 'many'"),
        ("[[grid]]\nsize = -3", "size must be a positive whole number"),
        ("[[grid]]\nbackbones = 3", "backbones must be a list of names"),
        ("[leaderboard]\nbaselin = '2d'\n[[grid]]", "unknown key 'baselin'; did you mean 'baseline'?"),
        ("[[grid]\n", "is not valid TOML"),
    ],
)
def test_a_malformed_study_file_names_the_key_and_the_valid_ones(text, message):
    with pytest.raises(UsageError, match="^study bad.toml") as caught:
        parse_text(text, source="bad.toml")
    assert message in str(caught.value)


def test_the_builtin_studies(installed_registry):
    names = installed_registry.names("study")
    assert names[:5] == ["paper-table1", "paper-table2", "paper-table3", "demo", "synthetic-comparison"]
    table1 = resolve(installed_registry.get("study", "paper-table1").load(), installed_registry)
    assert [g.backbones for g in table1.grids] == [("vits", "vitb", "vitl"), ("resnet50",)]
    assert [g.strategies for g in table1.grids] == [("2d", "3d", "pcm", "pcg"), ("2d", "3d", "acs", "pcg")]
    assert all(g.protocols == ("table1-probe",) and g.seeds == tuple(range(5)) and g.size == 64 for g in table1.grids)
    assert table1.grids[0].datasets == ("organ", "nodule", "fracture", "adrenal", "vessel", "synapse")
    assert table1.runs() == 6 * (3 * 4 + 4) * 5 and table1.leaderboard.reported
    table2 = installed_registry.get("study", "paper-table2").load()
    assert {g.protocols for g in table2.grids} == {("table2-finetune",)} and table2.results == "results/table2"
    table3 = installed_registry.get("study", "paper-table3").load()  # read, not resolved: its names are checked when it runs
    assert table3.grids[0].datasets == ("lidc", "mmwhs-ct", "mmwhs-mri") and table3.grids[0].seeds == (42,)
    assert table3.grids[0].size is None  # each dataset's own size


def test_the_demo_study_is_the_demo_and_the_committed_comparison_is_its_grid(installed_registry):
    demo = installed_registry.get("study", "demo").load()
    (grid,) = demo.grids
    assert (grid.datasets, grid.backbones, grid.strategies, grid.protocols) == (
        ("synthetic",), ("vit-tiny-shapes", "resnet-tiny-shapes"), ("all",), ("linear",))  # fmt: skip
    assert (grid.size, grid.seeds, grid.weights, dict(grid.options)) == (
        32,
        (0, 1, 2),
        "pretrained",
        {"iterations": 1000, "warmup": 50},
    )
    assert demo.results == "liftbench-demo"
    committed = installed_registry.get("study", "synthetic-comparison").load()
    assert committed.grids == demo.grids and committed.results == "results/demo"
    keys = lambda s: [r.key for r in plan_study(resolve(s, installed_registry), installed_registry)]  # noqa: E731
    assert keys(committed) == keys(demo)  # the same runs: results/demo is the demo


def test_liftbench_with_no_arguments_plans_the_demo_study(capsys):
    assert main(["run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "plan: 30 runs" in out and "liftbench-demo" in out


def test_run_study_file_records_it_and_the_record_reruns_it(tmp_path, capsys):
    study = tmp_path / "mine.toml"
    study.write_text(
        'name = "mine"\nresults = "%s"\n[[grid]]\nbackbones = "vit-tiny-shapes"\nstrategies = "2d,pcg"\nseeds = 1\n'
        'size = 32\nweights = "random"\noptions = { quick = true, iterations = 20, warmup = 2 }\n'
        "dataset_options = { n_train = 12, n_val = 6, n_test = 6 }\n" % (tmp_path / "out"),
        encoding="utf-8",
    )
    assert main(["run", "--study", str(study), "--no-leaderboard"]) == 0
    recorded = tmp_path / "out" / "study.toml"
    saved = read_study(recorded)
    assert saved.name == "mine" and saved.grids[0].strategies == ("2d", "pcg") and saved.grids[0].seeds == (0,)
    capsys.readouterr()
    assert main(["run", "--study", str(recorded), "--no-leaderboard"]) == 0
    assert "2 already in" in capsys.readouterr().out
    # flags override the file: a second seed is two more runs, and the record's grid grows to cover both
    assert main(["run", "--study", str(recorded), "--seeds", "2", "--no-leaderboard"]) == 0
    assert "2 done" in capsys.readouterr().out
    assert [g.seeds for g in read_study(recorded).grids] == [(0, 1)] and read_study(recorded).runs() == 4


def test_a_study_naming_an_unknown_thing_exits_2_with_did_you_mean(tmp_path, capsys):
    study = tmp_path / "typo.toml"
    study.write_text('[[grid]]\nstrategies = "pgc"\n', encoding="utf-8")
    assert main(["run", "--study", str(study), "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "study 'typo'" in err and "unknown strategy 'pgc'; did you mean 'pcg'?" in err and "Traceback" not in err
    assert main(["run", "--study", "paper-tabel1"]) == 2
    assert "unknown study 'paper-tabel1'; did you mean 'paper-table1'?" in capsys.readouterr().err
    assert main(["run", "--study", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read study file" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing ran, nothing was recorded


def test_a_study_is_checked_only_when_it_runs(tmp_path):
    study = tmp_path / "late.toml"
    study.write_text('description = "a typo"\n[[grid]]\ndatasets = "synthetc"\n', encoding="utf-8")

    class Plugin:
        @hookimpl
        def liftbench_register_studies(self, registrar):
            registrar.add("late", f"file:{study}", description="names a dataset nobody registered")

    installed_registry = build_registry(extra=[("late-plugin", Plugin())])
    entry = installed_registry.get("study", "late")
    assert entry.provider == "late-plugin (in-process)" and entry.load().name == "late"  # registered and readable
    runs, why = count_runs(entry.load(), installed_registry)
    assert runs is None and "unknown dataset 'synthetc'" in why
    with pytest.raises(UsageError, match="unknown dataset 'synthetc'; did you mean 'synthetic'"):
        resolve(entry.load(), installed_registry)


def test_list_studies_shows_runs_and_layout(capsys):
    assert main(["list", "studies"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("paper-table1 "))
    assert " 480 " in line
    assert main(["list", "studies", "paper-table1"]) == 0
    detail = " ".join(capsys.readouterr().out.split())
    assert "runs: 480" in detail and "protocol table1-probe; auc,acc; baseline 2d; with reported" in detail
    assert next(line for line in out.splitlines() if line.startswith("demo ")).split().count("30") == 1


def test_merging_records_keeps_every_grid_once():
    a, b = Study("s", grids=(Grid(seeds=(0,)),)), Study("s", grids=(Grid(seeds=(1,)),))
    assert merged(None, a) == a and merged(a, a).grids == a.grids and merged(a, b).grids == a.grids + b.grids
    both = Study("s", grids=(Grid(seeds=(0, 1)),))
    assert merged(merged(a, b), both).grids == both.grids  # a grid the new one covers goes


def test_a_study_counts_distinct_runs():
    """Overlapping grids (a record merged from several commands) count a shared run once, as it is planned once."""
    grids = (Grid(strategies=("2d", "pcg"), seeds=(0, 1)), Grid(strategies=("2d",), seeds=(1, 2)))
    assert Study("s", grids=grids).runs() == 5  # 2d: seeds 0, 1, 2; pcg: seeds 0, 1
    other = Grid(strategies=("2d",), seeds=(1,), options={"iterations": 5})  # another configuration: another run
    assert Study("s", grids=(*grids, other)).runs() == 6


def test_check_demo_compares_the_tables_cell_for_cell():
    import importlib.util

    root = ROOT
    spec = importlib.util.spec_from_file_location("check_demo", root / "scripts" / "check_demo.py")
    check_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_demo)
    committed = (root / "results" / "demo" / "leaderboard.md").read_text(encoding="utf-8")
    assert check_demo.differences(committed, committed) == []
    moved = committed.replace("| 75.8 ± 0.4\\* ", "| 75.9 ± 0.4\\* ")  # marked: it differs from the baseline 2d
    assert check_demo.differences(moved, committed) == [
        "vit-tiny-shapes / 3d, synthetic AUC: committed '75.8 ± 0.4\\\\*', fresh '75.9 ± 0.4\\\\*'"
    ]
    assert check_demo.main([str(root / "results" / "demo")]) == 0  # the committed results give the committed table
