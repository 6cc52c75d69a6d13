"""``--dry-run``: the plan and its cost, computed on the meta device, without running anything."""

from __future__ import annotations

import torch

from liftbench.bench.flops import count_flops
from liftbench.cli import main
from liftbench.estimate import trace
from liftbench.lifting.api import lift_with
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
