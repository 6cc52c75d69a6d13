"""Figure 3: the p-value matrices use the leaderboard's test on the leaderboard's numbers, and draw the same bytes."""

from __future__ import annotations

import math

from leaderboard_rows import BASE, OFFSETS, cell, frame_of, synthetic_rows

from liftbench.report import leaderboard as lb
from liftbench.report.paired import DETERMINISTIC, FEW_SEEDS
from liftbench.report.plots_pvalues import matrices, plot_pvalues


def _matrix(tables, backbone, dataset, metric):
    (table,) = tables
    (found,) = [m for m in matrices(table) if (m.backbone, m.dataset, m.metric) == (backbone, dataset, metric)]
    return found


def test_every_star_agrees_with_its_matrix_cell():
    frame = frame_of(synthetic_rows())
    tables = lb.build_tables(frame, baseline="2d")
    checked = 0
    for backbone in OFFSETS:
        for dataset, metric in [*BASE, ("avg", "auc"), ("avg", "acc")]:
            m = _matrix(tables, backbone, dataset, metric)
            base = m.labels.index("2d")
            for i, label in enumerate(m.labels):
                if i == base:
                    continue
                c, test = cell(tables, backbone, label, dataset, metric), m.tests[i][base]
                assert c.significant == test.significant
                assert (c.p_value is None) == (test.p_value is None)
                if c.p_value is not None:
                    assert math.isclose(c.p_value, test.p_value) and math.isclose(test.p_value, m.tests[base][i].p_value)
                checked += 1
    assert checked == 2 * 6 * 2
    vits = _matrix(tables, "vits", "organ", "auc")
    labels = vits.labels
    assert vits.tests[labels.index("pcg")][labels.index("2d")].significant
    assert vits.tests[labels.index("pcm")][labels.index("2d")].p_value is None  # identical to 2d: zero variance
    assert vits.tests[labels.index("pcg")][labels.index("pcm")].significant  # every pair, not only the baseline


def test_untested_cells_say_why():
    deterministic = [dict(r, value=BASE[(r["dataset"], r["metric"])] + OFFSETS[r["backbone"]][r["strategy"]][0]) for r in synthetic_rows()]
    m = _matrix(lb.build_tables(frame_of(deterministic)), "vits", "organ", "auc")
    assert {t.reason for row in m.tests for t in row if t is not None} == {DETERMINISTIC}
    one_seed = [r for r in synthetic_rows() if r["seed"] == 0]
    m = _matrix(lb.build_tables(frame_of(one_seed)), "vits", "organ", "auc")
    assert {t.reason for row in m.tests for t in row if t is not None} == {FEW_SEEDS}


def test_figures_have_deterministic_bytes(tmp_path):
    frame = frame_of(synthetic_rows())
    first = plot_pvalues(frame, tmp_path / "a", metrics=None)
    second = plot_pvalues(frame, tmp_path / "b", metrics=None)
    assert [p.name for p in first] == [p.name for p in second] and len(first) == 3 * 2  # organ, nodule, avg; png + svg
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    svg = (tmp_path / "a" / "pvalues_linear_organ.svg").read_text()
    assert "vits, AUC" in svg and "vitb, ACC" in svg
