"""Bad inputs, one step off the tested path: each case is the command, its exit status, its message, and what the
results folder holds afterwards. Identity by content (a replaced data file, another data root, a checkpoint
overwritten at its path), the one write rule (an ok result is never replaced by a failure), runs claimed by one
command at a time, result files that are not results, and every option bounded before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_args import TINY_SYNTHETIC
from medmnist_files import write_medmnist_npz

from liftbench.cli import main
from liftbench.run.results import ATTEMPTS_DIR, UNREADABLE_DIR, read_results, result_files, run_files

FAST = ["--quick", "--iterations", "6", "--warmup", "1", "--no-leaderboard"]
GRID = ["--backbones", "vit-tiny-shapes", "--strategies", "2d", "--weights", "random"]



def _files(folder: Path) -> list[Path]:
    return run_files(folder)


def _test_auc(folder: Path) -> float:
    frame = read_results(folder).frame
    return float(frame[(frame["split"] == "test") & (frame["metric"] == "auc")]["value"].iloc[0])


def _organ_run(root: Path, out: Path, *extra: str) -> int:
    return main(["run", "--datasets", "organ", "--size", "28", "--data-root", str(root), *GRID, "--protocol", "linear",
                 "--results", str(out), *FAST, *extra])  # fmt: skip


# --------------------------------------------------------------------------- identity by content


def test_a_replaced_data_file_is_another_run_with_fresh_features(tmp_path, capsys):
    root, out = tmp_path / "data", tmp_path / "out"
    write_medmnist_npz(root, "organmnist3d", 28, seed=1)
    assert _organ_run(root, out) == 0
    first = read_results(out).frame
    write_medmnist_npz(root, "organmnist3d", 28, seed=2)  # another file under the same name
    capsys.readouterr()
    assert _organ_run(root, out) == 0
    out_text = capsys.readouterr().out
    assert "1 done" in out_text and "0 already in" in out_text  # not "already done": the data is not the same
    frame = read_results(out).frame
    assert len(_files(out)) == 2 and frame["data_fingerprint"].nunique() == 2
    notes = [json.loads(n)["feature_cache"] for n in frame.drop_duplicates("run_key")["notes"]]
    assert notes == ["miss", "miss"]  # features extracted afresh for the new data, not a stale cache hit
    assert set(first["run_key"]) < set(frame["run_key"])


def test_another_data_root_with_the_same_file_name_is_another_run(tmp_path):
    one, two, out = tmp_path / "one", tmp_path / "two", tmp_path / "out"
    write_medmnist_npz(one, "organmnist3d", 28, seed=1)
    write_medmnist_npz(two, "organmnist3d", 28, seed=5)
    assert _organ_run(one, out) == 0 and _organ_run(two, out) == 0
    assert len(_files(out)) == 2
    # the same content under another folder is the same run: nothing is recomputed
    three = tmp_path / "three"
    write_medmnist_npz(three, "organmnist3d", 28, seed=1)
    assert _organ_run(three, out) == 0 and len(_files(out)) == 2


def test_force_recomputes_the_features_too(tmp_path, capsys):
    root, out = tmp_path / "data", tmp_path / "out"
    write_medmnist_npz(root, "organmnist3d", 28, seed=1)
    assert _organ_run(root, out, "--seeds", "2") == 0
    assert _organ_run(root, out, "--seeds", "2", "--force") == 0
    frame = read_results(out).frame.drop_duplicates("run_key")
    notes = sorted(json.loads(n)["feature_cache"] for n in frame["notes"])
    assert notes == ["hit", "miss"]  # forced: the first seed extracts afresh, the second reuses that extraction


def test_a_checkpoint_overwritten_at_its_path_is_another_run(tmp_path):
    from safetensors.torch import save_file

    from liftbench.backbones.shapes.load import create

    ckpt, out = tmp_path / "w.safetensors", tmp_path / "out"
    for seed in (1, 2):
        model, _ = create(f"random:{seed}", model_name="vit-tiny-shapes")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
        args = ["run", "--datasets", "synthetic", *TINY_SYNTHETIC, "--backbones", "vit-tiny-shapes", "--strategies", "2d",
                "--weights", str(ckpt), "--results", str(out), *FAST]  # fmt: skip
        assert main(args) == 0
    frame = read_results(out).frame
    assert len(_files(out)) == 2 and frame["weights_sha256"].nunique() == 2
    assert set(frame["weights"]) == {str(ckpt)}


def test_a_missing_checkpoint_stops_the_plan(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["run", "--datasets", "synthetic", *TINY_SYNTHETIC, "--backbones", "vit-tiny-shapes", "--strategies", "2d",
               "--weights", str(tmp_path / "nope.pth"), "--results", str(out), *FAST])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "nope.pth" in err and "does not exist" in err and "Traceback" not in err
    assert not out.exists() or not _files(out)


# --------------------------------------------------------------------------- one write rule


def _synthetic(out: Path, *extra: str) -> list[str]:
    return ["run", "--datasets", "synthetic", *TINY_SYNTHETIC, *GRID, "--results", str(out), *FAST, *extra]


def test_a_forced_rerun_that_fails_keeps_the_ok_result_and_exits_1(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert main(_synthetic(out)) == 0
    (path,) = _files(out)
    before = path.read_bytes()

    import liftbench.protocols.linear as linear

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while caching (simulated)")

    monkeypatch.setattr(linear, "cached_features", broken)
    capsys.readouterr()
    assert main(_synthetic(out, "--force")) == 1
    text = capsys.readouterr().out
    assert "1 rerun(s) failed; their earlier results are kept" in text
    assert path.read_bytes() == before  # the ok result, untouched
    (attempt,) = (out / ATTEMPTS_DIR).glob("*.parquet")
    assert attempt.stem == path.stem
    assert main(["status", str(out)]) == 0
    status = capsys.readouterr().out
    assert "1 rerun(s) failed; the earlier result of each is kept" in status and "disk full while caching" in status
    monkeypatch.undo()
    assert main(_synthetic(out, "--force")) == 0  # a rerun that works replaces the ok and clears the attempt
    assert not list((out / ATTEMPTS_DIR).glob("*.parquet"))


def test_a_run_claimed_by_another_command_is_left_to_it(tmp_path, capsys):
    from liftbench.plugin.manager import build_registry
    from liftbench.study.grid_runs import plan

    out = tmp_path / "out"
    registry = build_registry()
    (run,) = plan(registry, datasets=registry.resolve("dataset", "synthetic"), backbones=registry.resolve("backbone", "vit-tiny-shapes"),
                  strategies=registry.resolve("strategy", "2d"), protocols=registry.resolve("protocol", "linear"), seeds=[0],
                  size=32, weights="random", options={"quick": True, "iterations": 6, "warmup": 1},
                  dataset_options={"n_train": 12, "n_val": 6, "n_test": 6})  # fmt: skip
    holder = subprocess.Popen(  # another command, computing that run right now
        [sys.executable, "-c", "import sys, time\nfrom liftbench.run.executors.claim import claimed\n"
         f"with claimed({str(out)!r}, {run.key!r}):\n    print('held', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main(_synthetic(out)) == 0
        text = capsys.readouterr().out
        assert "1 left to another liftbench command computing them in that folder" in text
        assert not _files(out)  # nothing computed twice, nothing overwritten
    finally:
        holder.kill()
        holder.wait()
    assert main(_synthetic(out)) == 0 and len(_files(out)) == 1  # the claim died with its process


# --------------------------------------------------------------------------- files that are not results


def test_a_result_file_that_fails_the_schema_is_moved_aside_and_redone(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_synthetic(out)) == 0
    (path,) = _files(out)
    frame = pd.read_parquet(path).drop(columns=["value"])  # a status, but no value: not a result
    frame.to_parquet(path)
    assert main(["status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 file(s) are not complete results" in text and path.name in text and "missing columns: value" in text
    assert main(_synthetic(out)) == 0
    text = capsys.readouterr().out
    assert f"result file {path} is not a complete result" in text and "1 done" in text
    (moved,) = (out / UNREADABLE_DIR).glob("*.parquet")
    assert moved.name.startswith(path.stem)  # kept, never deleted
    assert len(result_files(out)) == 1 and _test_auc(out) == _test_auc(out)


# --------------------------------------------------------------------------- options checked before anything runs


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "inf"], "option lr='inf' of protocol 'linear' is out of range: must be > 0, finite"),
        (["--lr", "nan"], "option lr='nan' of protocol 'linear' is out of range: must be > 0, finite"),
        (["--lr", "0"], "must be > 0"),
        (["--iterations", "0"], "option iterations='0' of protocol 'linear' is out of range: must be >= 1"),
        (["--iterations", "-5"], "must be >= 1"),
        (["--batch-size", "-3"], "option batch_size='-3' of protocol 'linear' is out of range: must be >= 1"),
        (["--batch-size", "0"], "must be >= 1"),
        (["--warmup", "-1"], "option warmup='-1' of protocol 'linear' is out of range: must be >= 0, < iterations"),
        (["--warmup", "6"], "option warmup=6 of protocol 'linear' is out of range: must be < iterations (6)"),
        (["--eval-every", "-1"], "option eval_every='-1' of protocol 'linear' is out of range: must be >= 0"),
        (["--dataset-opt", "n_train=0"], "option n_train='0' of dataset 'synthetic' is out of range: must be >= 1"),
        (["--seeds", "3000000000,1"], "--seeds: invalid seed 3000000000: seeds must be in 0..2147483647"),
        (["--seeds", "99999999999"], "--seeds: invalid seeds '99999999999': a count runs seeds 0..N-1"),
        (["--device", "cuda:9"], "--device: device 'cuda:9' is not available on this machine"),
    ],
)
@pytest.mark.parametrize("dry", [False, True])
def test_an_option_out_of_range_exits_2_before_anything_runs(tmp_path, capsys, flags, message, dry):
    out = tmp_path / "out"
    assert main(_synthetic(out, *flags, *(["--dry-run"] if dry else []))) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())  # nothing ran, nothing was written


def test_a_full_results_disk_is_one_line_naming_the_folder(tmp_path, monkeypatch, capsys):
    import errno

    import liftbench.run.results as results

    out = tmp_path / "out"

    def full(table, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results, "write_atomic", full)
    assert main(_synthetic(out)) == 2
    err = capsys.readouterr().err
    assert "cannot write the result of run" in err and str(out) in err and "No space left on device" in err
    errors = [line for line in err.splitlines() if line.startswith("liftbench: error:")]  # (the progress bar aside)
    assert "Traceback" not in err and len(errors) == 1 and "No space left on device" in errors[0]
    assert not _files(out)  # nothing half-written
