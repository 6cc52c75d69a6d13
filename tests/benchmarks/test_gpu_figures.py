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
def test_gpu_figures_smoke_writes_all_three_tables(tmp_path):
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
    ):
        assert heading in summary
    assert "SMOKE RUN" in summary and "allow_tf32 = False" in summary and "--smoke" in summary
    data = json.loads((out / "gpu_figures.json").read_text())
    assert data["settings"]["allow_tf32_matmul"] is False
    # every measurement either gave figures or says why not (time budget, OOM, failure): nothing silently missing
    rows = data["part1"] + data["part2"] + data["part3"]["measured"]
    assert rows and all(r.get("status") for r in rows)
    assert any(r["status"] == "ok" for r in data["part1"])
    assert data["part3"]["formula"].startswith("Per run")
    assert set(data["part3"]["splits"]) == {"organ", "nodule", "fracture", "adrenal", "vessel", "synapse"}
