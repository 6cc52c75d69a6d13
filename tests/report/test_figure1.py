"""Figure 1 (``liftbench show``): the coherence number's known answers, comparable colours, same bytes, CLI errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from liftbench.cli import main
from liftbench.datasets import diagnostic
from liftbench.report.figure1 import Coherence, coherence, panels, pca_rgb


def test_coherence_known_answers():
    g = torch.randn(16, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    constant = g.expand(16, 6, 4, 4)
    assert math.isclose(coherence(constant).d, 1.0, abs_tol=1e-12)
    alternating = g * torch.tensor([1.0, -1.0] * 3).view(1, 6, 1, 1)  # partner: each slice the negative of the last
    assert math.isclose(coherence(alternating).d, -1.0, abs_tol=1e-12)
    assert math.isnan(coherence(torch.randn(8, 1, 3, 3)).d)  # one slice: no neighbours along D
    assert math.isclose(Coherence(d=0.5, hw=0.25).ratio, 2.0) and math.isnan(Coherence(d=0.5, hw=-0.01).ratio)


@pytest.mark.parametrize("backbone", ["vit-tiny-shapes", "resnet-tiny-shapes"])
def test_a_volume_constant_along_depth_is_perfectly_coherent_under_slice2d(backbone):
    volume = diagnostic.make_split(1, 32, seed=0).volumes[0]
    constant = np.repeat(volume[:, 16:17], 32, axis=1)  # the central slice, 32 times
    (row,) = panels(backbone, ["2d"], constant)
    assert row.coherence.d == pytest.approx(1.0, abs=1e-6)
    # partner: the volume's own slices, shuffled along D, are not
    shuffled = volume[:, np.random.default_rng(0).permutation(32)]
    (row,) = panels(backbone, ["2d"], shuffled)
    assert row.coherence.d < 0.95


def test_one_pca_colours_every_strategy_alike():
    a = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(1))
    same, other = pca_rgb([a, a.clone()]), pca_rgb([a, a + 5.0])
    assert np.array_equal(same[0], same[1])
    assert np.abs(other[0] - other[1]).max() > 0.5  # partner: shifted features get other colours
    assert all(x.shape == (4, 3, 3, 3) and x.min() >= 0 and x.max() <= 1 for x in same)


def test_show_writes_the_same_bytes_twice(tmp_path, capsys):
    args = ["show", "--dataset", "diagnostic", "--backbone", "vit-tiny-shapes", "--strategies", "2d,pcg", "--volumes", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "diagnostic test 1 vit-tiny-shapes pcg: coh_D " in out
    for suffix in ("png", "svg"):
        first = (tmp_path / "a" / f"diagnostic_vit-tiny-shapes_test1.{suffix}").read_bytes()
        assert first == (tmp_path / "b" / f"diagnostic_vit-tiny-shapes_test1.{suffix}").read_bytes()
    assert b"coh_D" in (tmp_path / "a" / "diagnostic_vit-tiny-shapes_test1.svg").read_bytes()


@pytest.mark.parametrize("bad, message", [
    (["--volumes", "999"], "no volume '999' in the test split; valid: indexes 0..79"),
    (["--strategies", "acs"], "strategy acs cannot lift 'vit-tiny-shapes' (vit); valid: 2d, 3d, pcm, pcg"),
    (["--split", "dev"], "unknown split 'dev'; valid: train, val, test"),
    (["--dataset", "helixx"], "unknown dataset 'helixx'"),
])  # fmt: skip
def test_show_usage_errors_are_one_line(bad, message, capsys, tmp_path):
    assert main(["show", "--out", str(tmp_path), *bad]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
