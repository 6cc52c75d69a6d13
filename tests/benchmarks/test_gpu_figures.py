"""benchmarks/gpu_figures.py's smoke path: the GPU script runs end to end on CPU and writes its summary.

The real run needs a GPU (``python benchmarks/gpu_figures.py --out $OUT``); ``--smoke`` runs the same code with
the built-in tiny backbones at tiny sizes on one CPU thread (about 25 s), in a subprocess so its thread
setting and signal handler stay out of the test process. Marked slow: about 30 s on two shared cores.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from repo_root import ROOT


@pytest.mark.slow
def test_gpu_figures_smoke_writes_all_four_tables(tmp_path):
    out = tmp_path / "gpu"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_figures.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_figures.json", "gpu_figures.log", "gpu_figures.md"]
    summary = (out / "gpu_figures.md").read_text()
    for heading in (
        "## 1. Forward, bf16 autocast vs fp32",
        "## 2. ViT-L PCg fine-tune step memory",
        "## 3. Projected time",
        "## 4. DINOv3-7B lifted (2 of 40 blocks), slice-2D and PCg",
    ):
        assert heading in summary
    assert "SMOKE RUN" in summary and "allow_tf32 = False" in summary and "--smoke" in summary
    data = json.loads((out / "gpu_figures.json").read_text())
    assert data["settings"]["allow_tf32_matmul"] is False
    # every measurement either gave figures or says why not (time budget, OOM, failure): nothing silently missing
    rows = data["part1"] + data["part2"] + data["part3"]["measured"] + data["part4"]
    assert rows and all(r.get("status") for r in rows)
    assert any(r["status"] == "ok" for r in data["part1"])
    assert data["part3"]["formula"].startswith("Per run")
    assert set(data["part3"]["splits"]) == {"organ", "nodule", "fracture", "adrenal", "vessel", "synapse"}


@pytest.mark.slow
def test_gpu_figures_smoke_part4_lifts_two_blocks_of_the_7b(tmp_path):
    """Part 4 alone (its own budget, so a loaded machine cannot skip it): two blocks of DINOv3-7B's width (the second on PCg's DW plane), in bf16
    with no float32 copy, through slice-2D and PCg, which mixes the planes at fewer FLOPs."""
    out = tmp_path / "gpu"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_figures.py"), "--smoke", "--parts", "4",
                           "--budget", "200", "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads((out / "gpu_figures.json").read_text())
    part4 = {r["strategy"]: r for r in data["part4"]}
    assert part4["build"]["float32_parameters"] == 0 and part4["build"]["parameters"] > 100_000_000
    assert part4["2d"]["status"] == part4["pcg"]["status"] == "ok" and part4["2d"]["finite"] and part4["pcg"]["finite"]
    assert part4["pcg"]["gflop"] < part4["2d"]["gflop"] and part4["pcg vs 2d"]["max_abs_difference"] > 1e-3
    assert "## 4. DINOv3-7B lifted (2 of 40 blocks), slice-2D and PCg" in (out / "gpu_figures.md").read_text()
