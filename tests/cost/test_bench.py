"""``liftbench bench``: FLOP counting with CPU attention, the sweep, its files, OOM and skip handling."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
import torch.nn.functional as F

from liftbench.api import lift_with
from liftbench.cost.bench.flops import count_flops, flops_by_operator, register_cpu_attention_formulas
from liftbench.cost.bench.measure import is_out_of_memory, peak_memory_mb, time_call
from liftbench.cost.bench.report import write_report
from liftbench.cost.bench.sweep import BenchSettings, run_sweep
from liftbench.errors import UsageError
from liftbench.run.results import read_results

FAST = {"warmup": 1, "repeats": 2, "matmul_n": 256}



pytestmark = pytest.mark.usefixtures("one_torch_thread")




# ------------------------------------------------------------------------------------------- FLOPs


def test_cpu_attention_formula_matches_analytic_count():
    assert "_scaled_dot_product_flash_attention_for_cpu" in register_cpu_attention_formulas()
    b, h, lq, lk, d = 2, 3, 40, 24, 64
    q = torch.randn(b, h, lq, d, requires_grad=True)
    k, v = torch.randn(b, h, lk, d, requires_grad=True), torch.randn(b, h, lk, d, requires_grad=True)
    forward = 4 * b * h * lq * lk * d
    assert count_flops(lambda: F.scaled_dot_product_attention(q, k, v)) == forward
    per_op = flops_by_operator(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward())
    assert sum(per_op.values()) == forward + forward * 5 // 2  # torch's backward rule: 2.5x forward
    assert register_cpu_attention_formulas()  # idempotent: a second call registers nothing twice


def _flops_per_block_token(registry, strategy: str, size: int) -> float:
    """Counted FLOPs of one volume over the tokens its blocks process (global + patch tokens)."""
    torch.manual_seed(0)
    model, _ = registry.get("backbone", "tiny-vit").load()("random", **registry.get("backbone", "tiny-vit").options)
    lifted = lift_with(registry, model.eval(), strategy)
    volume = torch.randn(1, 1, size, size, size)
    with torch.no_grad():
        flops = count_flops(lambda: lifted(volume))
    grid, g = size // 16, 5
    tokens = size * (grid * grid + g) if strategy == "2d" else size * grid * grid + g
    return flops / tokens


def test_flatten3d_flops_per_token_grow_slice2d_flat(registry):
    grow = {s: _flops_per_block_token(registry, s, 64) / _flops_per_block_token(registry, s, 32) for s in ("2d", "3d")}
    assert grow["3d"] >= 1.5, grow  # attention over all D·h·w tokens: counted, so per-token cost grows
    assert 0.8 <= grow["2d"] <= 1.2, grow  # attention within one slice: flat


# ---------------------------------------------------------------------------------------- measure


def test_time_call_times_only_the_repeats_and_summarises_them(monkeypatch):
    """A fake clock that advances by a known amount per call: warm-up calls (1 s each) must not be timed."""
    from liftbench.cost.bench import measure

    clock = [0.0]
    durations = iter([1.0, 1.0, 0.005, 0.001, 0.003, 0.002])  # seconds: 2 warm-ups, then 4 timed calls

    def fn():
        clock[0] += next(durations)

    monkeypatch.setattr(measure, "time", argparse.Namespace(perf_counter=lambda: clock[0]))
    timing = time_call(fn, "cpu", warmup=2, repeats=4)
    # samples 5, 1, 3, 2 ms: median 2.5; inclusive quartiles 1.75 and 3.5
    assert timing.repeats == 4
    assert (timing.min_ms, timing.median_ms, timing.max_ms, timing.iqr_ms) == pytest.approx((1.0, 2.5, 5.0, 1.75))


def test_measure_helpers():
    assert peak_memory_mb(lambda: torch.ones(50_000_000).sum(), "cpu") > 100  # 200 MB tensor
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


# ----------------------------------------------------------------------------------------- sweep


def test_sweep_writes_parquet_markdown_and_plots(registry, tmp_path):
    settings = BenchSettings(sizes=(32, 48), batches=(1,), **FAST)
    backbones = registry.resolve("backbone", "tiny-vit,tiny-cnn")
    strategies = registry.resolve("strategy", "all")
    rows = run_sweep(registry, backbones, strategies, settings, tmp_path, log=lambda msg: None)
    frame = read_results(tmp_path).frame
    assert len(list(tmp_path.glob("*.parquet"))) == 2 * 5 * 2
    assert set(frame["kind"]) == {"bench"} and set(frame["protocol"]) == {"bench-forward"}
    assert len(frame) == len(rows)
    status = frame.groupby(["backbone", "strategy"])["status"].first().to_dict()
    assert status[("tiny-vit", "acs")] == "skipped" and status[("tiny-cnn", "pcm")] == "skipped"
    assert all(v == "ok" for k, v in status.items() if k not in {("tiny-vit", "acs"), ("tiny-cnn", "pcm")})
    ok = frame[frame["status"] == "ok"]
    for metric in ("latency_ms_median", "latency_ms_iqr", "volumes_per_second", "peak_memory_mb",
                   "gflops_per_volume", "achieved_fraction_of_matmul_peak", "matmul_peak_gflops"):
        assert (ok["metric"] == metric).sum() == 16
    # the derived metrics follow from the measured ones (batch 1): throughput and fraction of the matmul peak
    wide = ok.pivot_table(index=["backbone", "strategy", "input_size"], columns="metric", values="value")
    assert (wide["volumes_per_second"] * wide["latency_ms_median"] / 1000.0).to_numpy() == pytest.approx(1.0)
    expected_fraction = wide["gflops_per_volume"] * wide["volumes_per_second"] / wide["matmul_peak_gflops"]
    assert wide["achieved_fraction_of_matmul_peak"].to_numpy() == pytest.approx(expected_fraction.to_numpy())
    assert json.loads(ok["options"].iloc[0])["batch"] == 1 and json.loads(ok["options"].iloc[0])["dtype"] == "fp32"
    assert set(frame["dataset"]) == {""} and set(frame["input_size"]) == {32, 48}
    gflops = ok[ok["metric"] == "gflops_per_volume"].set_index(["backbone", "strategy", "input_size"])["value"]
    assert gflops[("tiny-vit", "3d", 48)] > gflops[("tiny-vit", "3d", 32)] > 0 and gflops[("tiny-cnn", "acs", 32)] > 0

    written = write_report(frame, tmp_path)
    text = (tmp_path / "bench.md").read_text()
    assert "| tiny-vit | acs | skipped |" in text and "48³ ms" in text and "% peak" in text
    names = {p.name for p in written}
    assert {"time_forward_fp32_b1.png", "time_forward_fp32_b1.svg", "memory_forward_fp32_b1.png", "memory_forward_fp32_b1.svg"} <= names
    assert all(p.stat().st_size > 0 for p in written)


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
                                   RuntimeError("DefaultCPUAllocator: can't allocate memory"),
                                   RuntimeError("something else broke")])
def test_out_of_memory_is_recorded_and_the_sweep_goes_on(registry, tmp_path, monkeypatch, error):
    from liftbench.lifting.vit_flatten3d import Flatten3DViT

    def exhausted(self, volumes):
        raise error

    monkeypatch.setattr(Flatten3DViT, "forward", exhausted)
    settings = BenchSettings(sizes=(16,), **FAST)
    run_sweep(registry, registry.resolve("backbone", "tiny-vit"), registry.resolve("strategy", "3d,2d"), settings, tmp_path, log=lambda m: None)
    frame = read_results(tmp_path).frame
    failed = frame[frame["strategy"] == "3d"]
    assert list(failed["status"]) == ["failed"]
    if "broke" in str(error):
        assert "something else broke" in failed["error"].iloc[0]
    else:
        assert failed["error"].iloc[0] == "out of memory"
    assert set(frame[frame["strategy"] == "2d"]["status"]) == {"ok"}
    report = write_report(frame, tmp_path)[0].read_text()
    assert ("OOM" in report) == ("broke" not in str(error))  # out of memory is reported as such; another error is not


# ------------------------------------------------------------------------------------------- CLI


def _args(**overrides) -> argparse.Namespace:
    from liftbench.commands.bench import add_parser

    parser = argparse.ArgumentParser()
    parser.add_argument("--disable-plugin", action="append", default=[])
    add_parser(parser.add_subparsers(dest="command"))
    argv = ["bench"] + [item for key, value in overrides.items() for item in (f"--{key.replace('_', '-')}", str(value))]
    return parser.parse_args(argv)


def test_bench_command_end_to_end(registry, tmp_path, monkeypatch):
    from liftbench.commands.bench import bench_command

    monkeypatch.setattr("liftbench.plugin.manager.build_registry", lambda *a, **k: registry)
    import liftbench.cost.bench.sweep as sweep_module

    small_peak = sweep_module.matmul_peak_gflops
    monkeypatch.setattr(sweep_module, "matmul_peak_gflops", lambda device, dtype, n: small_peak(device, dtype, n=256))
    args = _args(backbones="tiny-vit", strategies="2d,acs", sizes="16", batch="1,2", repeats=1, warmup=0, results=tmp_path)
    assert bench_command(args) == 0
    frame = read_results(tmp_path).frame
    ok = frame[frame["status"] == "ok"]
    assert sorted({json.loads(o)["batch"] for o in ok["options"]}) == [1, 2]
    assert (tmp_path / "bench.md").exists() and (tmp_path / "plots").is_dir()


@pytest.mark.parametrize("flag, value", [("sizes", "32,x"), ("sizes", "0"), ("batch", ""), ("dtype", "fp8"),
                                         ("device", "tpu"), ("repeats", "0"), ("strategies", "nosuch")])
def test_bench_command_user_mistakes(registry, tmp_path, monkeypatch, flag, value):
    from liftbench.commands.bench import bench_command

    monkeypatch.setattr("liftbench.plugin.manager.build_registry", lambda *a, **k: registry)
    with pytest.raises(UsageError):
        bench_command(_args(**{flag: value, "results": tmp_path}))


# ------------------------------------------------------------------------------ segmentation step


def _lifted_tiny(registry, strategy: str = "pcg", **options):
    torch.manual_seed(0)
    entry = registry.get("backbone", "tiny-vit")
    model, _ = entry.load()("random", **entry.options)
    return lift_with(registry, model, strategy, **options)


@pytest.mark.parametrize("mode, classes", [("frozen", 6), ("finetune", 6), ("frozen", 2), ("finetune", 2)])
def test_seg_step_trains_the_head_and_the_backbone_only_when_finetuning(registry, mode, classes):
    from liftbench.cost.bench.segstep import make_seg_step
    from liftbench.segmentation.decoder import ProgressiveUpHead

    lifted = _lifted_tiny(registry, "pcg", checkpoint=mode == "finetune")
    before = {k: v.clone() for k, v in lifted.state_dict().items()}
    volumes = torch.randn(2, 1, 16, 16, 16)
    step, sizes = make_seg_step(lifted, volumes, mode, classes, "fp32", "cpu")
    step()
    step()
    changed = [k for k, v in lifted.state_dict().items() if not torch.equal(v, before[k])]
    if mode == "frozen":
        assert changed == [] and all(p.grad is None for p in lifted.parameters())
    else:
        assert changed and all(p.grad is not None for p in lifted.parameters() if p.requires_grad)
    figures = sizes()
    head = ProgressiveUpHead(64, 1 if classes == 2 else classes, hidden=512)  # tiny-vit: 64 channels
    assert figures["head_parameters"] == sum(p.numel() for p in head.parameters())
    backbone = sum(p.numel() for p in lifted.parameters())
    assert figures["trainable_parameters"] == figures["head_parameters"] + (backbone if mode == "finetune" else 0)
    assert figures["state_memory_mb"] * 2**20 > 4 * figures["head_parameters"] * 4  # weights, grads, 2 moments


def test_seg_step_runs_in_bf16(registry):
    from liftbench.cost.bench.segstep import make_seg_step

    lifted = _lifted_tiny(registry, "2d")
    step, _ = make_seg_step(lifted, torch.randn(1, 1, 16, 16, 16), "finetune", 6, "bf16", "cpu")
    dtypes = []
    linear = next(m for m in lifted.modules() if isinstance(m, torch.nn.Linear))
    hook = linear.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    before = [p.detach().clone() for p in lifted.parameters()]
    step()
    hook.remove()
    assert torch.bfloat16 in dtypes  # the backbone really ran under bf16 autocast
    after = list(lifted.parameters())
    assert all(torch.isfinite(p).all() for p in after) and any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_seg_sweep_rows_carry_mode_and_head_parameters(registry, tmp_path, mode):
    settings = BenchSettings(sizes=(16,), seg=mode, seg_classes=2, checkpoint=mode == "finetune", **FAST)
    run_sweep(registry, registry.resolve("backbone", "tiny-vit"), registry.resolve("strategy", "2d,pcg"), settings,
              tmp_path, log=lambda m: None)  # fmt: skip
    frame = read_results(tmp_path).frame
    ok = frame[frame["status"] == "ok"]
    assert set(frame["status"]) == {"ok"} and set(frame["protocol"]) == {f"bench-seg-{mode}"}
    assert set(frame["backbone_mode"]) == {"train" if mode == "finetune" else "eval"}
    options = json.loads(ok["options"].iloc[0])
    assert options["seg"] == mode and options["seg_classes"] == 2
    assert options.get("checkpoint", False) == (mode == "finetune")
    heads = ok[ok["metric"] == "head_parameters"]["value"]
    assert len(heads) == 2 and heads.nunique() == 1 and heads.iloc[0] > 1e6
    assert (ok["metric"] == "state_memory_mb").sum() == 2 and (ok["metric"] == "volumes_per_second").sum() == 2
    text = write_report(frame, tmp_path)[0].read_text()
    assert "# Segmentation training step" in text and "ViT-L 32 / 87 GB" in text
    assert "| head params | state MB |" in text
    assert "binary, one logit channel" in text


def test_forward_rows_keep_their_options_and_keys():
    """Adding the seg fields must not change forward/train rows: same options, same file names as before."""
    from liftbench.cost.bench.sweep import bench_key

    settings = BenchSettings()
    assert settings.options() == {"dtype": "fp32", "train": False, "warmup": 2, "repeats": 5, "matmul_n": 2048}
    # the name the committed forward table's file already has (results/bench/bench-8a57769d501ac351.parquet)
    assert bench_key("vits", "pcg", 64, 1, settings) == "bench-8a57769d501ac351"
    assert bench_key("vits", "pcg", 64, 1, settings) != bench_key("vits", "pcg", 64, 1, BenchSettings(seg="frozen"))
    frozen, finetune = BenchSettings(seg="frozen"), BenchSettings(seg="finetune")
    assert bench_key("vits", "pcg", 64, 1, frozen) != bench_key("vits", "pcg", 64, 1, finetune)


@pytest.mark.parametrize("argv", [["--seg", "linear"], ["--seg", "frozen", "--train"], ["--seg-classes", "6"],
                                  ["--seg", "frozen", "--seg-classes", "1"], ["--seg", "frozen", "--checkpoint"],
                                  ["--checkpoint"]])  # fmt: skip
def test_bench_seg_user_mistakes(registry, tmp_path, monkeypatch, argv):
    from liftbench.commands.bench import add_parser, bench_command

    monkeypatch.setattr("liftbench.plugin.manager.build_registry", lambda *a, **k: registry)
    parser = argparse.ArgumentParser()
    parser.add_argument("--disable-plugin", action="append", default=[])
    add_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(UsageError):
        bench_command(parser.parse_args(["bench", *argv, "--results", str(tmp_path)]))
