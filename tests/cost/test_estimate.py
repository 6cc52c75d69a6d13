"""``--dry-run``: the plan and its cost, computed on the meta device, without running anything."""

from __future__ import annotations

import torch

from liftbench.api import lift_with
from liftbench.cli import main
from liftbench.cost.bench.flops import count_flops
from liftbench.cost.estimate import trace
from liftbench.testing import registry_with


def test_meta_trace_counts_the_flops_of_a_real_forward():
    """The estimate's FLOPs come from a forward on the meta device; they must equal a real forward's count."""
    registry = registry_with()
    for backbone, strategy, schedule in (("tiny-vit", "pcg", "HW,DW,DH,HW"), ("tiny-vit", "3d", ""), ("tiny-cnn", "acs", "")):
        meta_flops, peak = trace(registry, backbone, strategy, schedule, size=32, batch=2)
        entry = registry.get("backbone", backbone)
        model, _ = entry.load()("random", **entry.options)
        lifted = lift_with(registry, model.eval(), strategy, family=entry.family, **({"schedule": schedule} if schedule else {}))
        with torch.no_grad():
            real = count_flops(lambda lifted=lifted: lifted(torch.rand(2, lifted.in_chans, 32, 32, 32)))
        lifted.unlift()
        assert meta_flops == real > 0, (backbone, strategy)
        assert peak > sum(p.numel() * 4 for p in model.parameters())


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "study"
    rc = main(["run", "--datasets", "synthetic", "--backbones", "vits", "--strategies", "2d,3d,acs", "--size", "32",
               "--weights", "random", "--results", str(out), "--dry-run"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0 and not out.exists()
    assert "plan: 3 runs; 0 already in" in text and "1 skipped pairs, 2 to run" in text
    assert "strategy 'acs' cannot lift a vit backbone" in text
    lines = {line.split()[3]: line.split() for line in text.splitlines() if line.startswith("synthetic")}
    assert set(lines) == {"2d", "3d"} and lines["2d"][5] == "210"  # 120 + 45 + 45 volumes
    assert "estimated feature extraction on cpu" in text


def _seg_costs(registry, iterations: int):
    """The segmentation estimate of a tiny synthetic grid: the three training protocols at one batch size."""
    from liftbench.cost.estimate_seg import estimate_seg
    from liftbench.study.grid_runs import plan
    from liftbench.testing import TINY_DATA

    protocols = registry.resolve("protocol", "seg-linear-cached,seg-linear,seg-finetune,featdice")
    runs = plan(registry, datasets=registry.resolve("dataset", "synthetic"), backbones=registry.resolve("backbone", "tiny-vit"),
                strategies=registry.resolve("strategy", "2d"), protocols=protocols, seeds=(0, 1), size=28, weights="random",
                options={"iterations": iterations, "warmup": 1, "batch_size": 2, "hidden": 16}, dataset_options=TINY_DATA)  # fmt: skip
    return {c.protocol: c for c in estimate_seg(registry, runs)}


def test_segmentation_runs_get_a_training_estimate():
    """Each segmentation protocol gets a per-run time that grows with the updates; at equal batch, fine-tuning
    (backbone forward + backward) costs more than seg-linear (forward), which costs more than the cached variant."""
    registry = registry_with()
    short, long = _seg_costs(registry, 4), _seg_costs(registry, 40)
    for protocol in ("seg-linear-cached", "seg-linear", "seg-finetune"):
        assert short[protocol].runs == 2 and short[protocol].gflop_per_update > 0
        assert 0 < short[protocol].seconds_per_run < long[protocol].seconds_per_run, protocol
    for costs in (short, long):
        assert costs["seg-finetune"].gflop_per_update > costs["seg-linear"].gflop_per_update > costs["seg-linear-cached"].gflop_per_update
    assert long["seg-finetune"].seconds_per_run > long["seg-linear"].seconds_per_run > long["seg-linear-cached"].seconds_per_run
    assert long["seg-linear-cached"].seconds > long["seg-linear-cached"].runs * long["seg-linear-cached"].seconds_per_run  # + its extraction
    assert short["featdice"].updates == 0 and short["featdice"].seconds_per_run > 0


def test_dry_run_prints_the_segmentation_table(tmp_path, capsys):
    rc = main(["run", "--datasets", "synthetic", "--backbones", "vit-tiny-shapes", "--strategies", "2d", "--protocols", "seg-linear",
               "--size", "28", "--weights", "random", "--results", str(tmp_path / "r"), "--iterations", "3", "--warmup", "1",
               "--opt", "hidden=16", "--dry-run"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0 and "training (per run):" in text and "estimated segmentation training and scoring on cpu" in text
    row = next(line.split() for line in text.splitlines() if "seg-linear" in line and line.startswith("synthetic"))
    assert row[5:8] == ["3", "x", "8"] and float(row[-1]) > 0
