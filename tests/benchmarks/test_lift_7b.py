"""benchmarks/lift_7b.py on a depth-reduced model of DINOv3-7B's width: built in bf16 without a float32 copy,
lifted with slice-2D and PCg, and slice-2D equal to PCg with the schedule HW (docs/strategies.md) while the default
schedule mixes planes."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from repo_root import ROOT

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lift_7b():
    spec = importlib.util.spec_from_file_location("lift_7b", ROOT / "benchmarks" / "lift_7b.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_7b_width_model_builds_in_bf16_and_lifts(lift_7b, registry):
    from liftbench.api import lift_with

    model = lift_7b.build_bf16(depth=1)
    params = list(model.parameters())
    assert model.embed_dim == 4096 and len(model.blocks) == 1
    assert {p.dtype for p in params} == {torch.bfloat16} and not any(p.is_meta for p in params)
    assert torch.isfinite(model.rope.periods).all() and model.rope.periods.dtype == torch.float32
    assert float(model.blocks[0].gamma_1[0].detach()) == pytest.approx(0.1, rel=1e-2)
    volume = torch.randn(1, 1, 8, 32, 32, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    with torch.inference_mode():
        slices = lift_with(registry, model, "2d")(volume).pooled
        hw = lift_with(registry, model, "pcg", schedule="HW")(volume).pooled  # lift_with unlifts the previous one
        coronal = lift_with(registry, model, "pcg", schedule="DW")(volume).pooled
    assert slices.shape == (1, 8, 4096) and torch.isfinite(slices).all()
    assert (slices[0, 0] - slices[0, 1]).abs().max() > 1e-2  # each slice's CLS sees its own slice
    assert torch.equal(slices, hw)  # slice-2D is PlaneCycle with schedule HW, bit for bit
    assert (coronal.float() - slices.float()).abs().max() > 1e-2  # the mutation partner: another plane differs


def test_the_benchmark_script_records_its_figures(lift_7b, tmp_path):
    assert lift_7b.main(["--depth", "1", "--size", "16", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "lift_7b.json").read_text())
    assert record["depth"] == 1 and record["float32_parameters"] == 0
    assert record["2d"]["finite"] and record["pcg"]["finite"] and record["2d"]["gflop"] > 0
    assert 0 < record["pcg_over_2d_gflop"] < 2 and record["peak_rss_mb"] < 3000
    assert "DEPTH-REDUCED (1 of 40 blocks)" in (tmp_path / "lift_7b.md").read_text()
