"""Leaderboard tables: aggregation, bold, reported rows, formats, significance, the AVG audit, check."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess

import pandas as pd
import pytest
from leaderboard_rows import BASE, OFFSETS, cell, frame_of, synthetic_rows

from liftbench.errors import UsageError
from liftbench.report import leaderboard as lb
from liftbench.report.reported import DEFAULT_CSV, PAPER, reported_rows, write_reported
from liftbench.run.results import read_results, rows_to_table, write_atomic


@pytest.fixture
def frame():
    return frame_of(synthetic_rows())


def md_row(text, label):
    """Markdown table lines whose strategy cell is ``label``, as stripped cells, the backbone filled in."""
    backbone = None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        backbone = cells[0] or backbone
        if cells[1] == label:
            yield [backbone, *cells[1:]]


def test_mean_std_and_avg(frame):
    tables = lb.build_tables(frame)
    c = cell(tables, "vits", "2d", "organ", "auc")
    assert c.mean == pytest.approx(80.0) and c.std == pytest.approx(1.0) and c.n == 3
    avg = cell(tables, "vits", "pcg", "avg", "acc")  # mean of 70+5 and 50+5
    assert avg.mean == pytest.approx(65.0) and avg.n == 3
    text = lb.render(frame)
    first = next(md_row(text, "2d"))
    assert first[:4] == ["vits", "2d", "80.0 ± 1.0", "70.0 ± 1.0"]
    assert [h.strip() for h in text.splitlines()[0].strip("|").split("|")][2:] == [
        "organ AUC", "organ ACC", "nodule AUC", "nodule ACC", "avg AUC", "avg ACC",
    ]  # fmt: skip


def test_single_seed_omits_std():
    rows = [r for r in synthetic_rows() if r["seed"] == 1]
    assert cell(lb.build_tables(frame_of(rows)), "vits", "2d", "organ", "auc").std is None
    assert "| 80.0 " in lb.render(frame_of(rows))


def test_bold_is_best_per_backbone_group(frame):
    tables = lb.build_tables(frame)
    (table,) = tables
    bold = {(r.backbone, r.label) for r in table.rows if r.cells[("organ", "auc")].bold}
    assert bold == {("vits", "pcg"), ("vitb", "pcm")}
    text = lb.render(frame)
    assert "**85.0 ± 1.0**" in text  # vits pcg organ AUC
    assert "**90.0 ± 1.7**" in text  # vitb pcm organ AUC: 89, 89, 92
    assert "Bold: best value of each column within a backbone group" in text


def test_ties_are_all_bold():
    rows = [r for r in synthetic_rows() if r["backbone"] == "vits" and r["strategy"] != "pcg"]
    tables = lb.build_tables(frame_of(rows))
    assert all(r.cells[("organ", "auc")].bold for r in tables[0].rows)


def reported_extra():
    rows = []
    for (dataset, metric), base in BASE.items():
        rows.append(
            dict(
                run_key="rep",
                kind="run",
                source="reported",
                citation="Someone: A Paper (Table 9)",
                dataset=dataset,
                backbone="vits",
                strategy="pcg",
                pooling="adaptive",
                protocol="linear",
                split="test",
                metric=metric,
                value=base + 0.20,
                status="ok",
            )
        )
    return rows


def test_reported_rows_are_marked_and_can_be_hidden():
    frame = frame_of(synthetic_rows() + reported_extra())
    text = lb.render(frame)
    (line,) = md_row(text, "pcg (reported)")
    assert line[2] == "**100.0**"  # one value: no std; best of the vits group
    assert "(reported): figures quoted from Someone: A Paper (Table 9), not measured by liftbench." in text
    hidden = lb.render(frame, reported=False)
    assert "(reported)" not in hidden
    assert hidden == lb.render(frame_of(synthetic_rows()))


def test_latex_structure(frame):
    rows = synthetic_rows()
    for r in rows:
        r["dataset"] = r["dataset"].replace("organ", "organ_x")
    text = lb.render(frame_of(rows), fmt="latex", baseline="2d")
    for needle in (r"\begin{tabular}{llcccccc}", r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}"):
        assert needle in text
    assert r"\multicolumn{2}{c}{organ\_x}" in text and "organ_x" not in text
    assert r"\textbf{85.0 $\pm$ 1.0}$^{*}$" in text
    assert "±" not in text and "†" not in text
    body = text[text.index(r"\midrule") : text.index(r"\bottomrule")]
    for line in body.splitlines():
        if line.endswith(r"\\"):
            assert line.count("&") == 7  # 8 columns
    assert text.index(r"\toprule") < text.index(r"\midrule") < text.index(r"\bottomrule")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles(frame, tmp_path):
    body = lb.render(frame_of(synthetic_rows() + reported_extra()), fmt="latex", baseline="2d")
    doc = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + body + "\\end{document}\n"
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "t.tex"], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stdout[-2000:]


def test_html_and_csv(frame):
    page = lb.render(frame, fmt="html")
    assert page.count("<table") == 1 and '<th colspan="2">organ</th>' in page and "<strong>" in page
    records = list(csv.DictReader(io.StringIO(lb.render(frame, fmt="csv"))))
    assert len(records) == 2 * 3 * 6  # backbones x strategies x (4 dataset columns + 2 avg)
    rec = next(
        r
        for r in records
        if (r["backbone"], r["strategy"], r["dataset"], r["metric"]) == ("vits", "2d", "organ", "auc")
    )
    assert (float(rec["mean"]), float(rec["std"]), int(rec["n"])) == (80.0, 1.0, 3)


def test_significance_marks_consistent_improvement_only(frame):
    tables = lb.build_tables(frame, baseline="2d")
    better = cell(tables, "vits", "pcg", "organ", "auc")
    same = cell(tables, "vits", "pcm", "organ", "auc")
    assert better.significant and better.p_value < 0.05
    assert not same.significant and same.p_value is None  # identical: t-test undefined
    assert cell(tables, "vits", "pcg", "avg", "auc").significant
    assert not cell(tables, "vitb", "pcg", "organ", "auc").significant  # mixed signs, p > 0.05
    assert not cell(tables, "vits", "2d", "organ", "auc").significant  # the baseline itself
    text = lb.render(frame, baseline="2d")
    (pcg,) = [r for r in md_row(text, "pcg") if r[0] == "vits"]
    assert pcg[2] == "**85.0 ± 1.0**\\*"
    (pcm,) = [r for r in md_row(text, "pcm") if r[0] == "vits"]
    assert "*" not in pcm[2]
    assert "paired t-test" in text
    assert "\\*" not in lb.render(frame)  # no baseline, no markers


def test_significance_needs_two_seeds():
    rows = [r for r in synthetic_rows() if r["seed"] == 0]
    tables = lb.build_tables(frame_of(rows), baseline="2d")
    assert not cell(tables, "vits", "pcg", "organ", "auc").significant


def test_no_significance_mark_for_a_deterministic_protocol():
    """Every seed gives the same value (FeatDice, a converged cached probe): the paired differences are a constant,
    ttest_rel says p = 0, and no difference was ever observed to vary — no mark, and the note says why."""
    rows = [dict(r, value=BASE[(r["dataset"], r["metric"])] + OFFSETS[r["backbone"]][r["strategy"]][0]) for r in synthetic_rows()]
    tables = lb.build_tables(frame_of(rows), baseline="2d")
    pcg = cell(tables, "vits", "pcg", "organ", "auc")
    assert not pcg.significant and pcg.p_value is None
    assert "No mark where the test is undefined: deterministic: seeds identical" in " ".join(tables[0].notes)
    assert "\\*" not in lb.render(frame_of(rows), baseline="2d").split("- ")[0]
    # partner: the same offsets with seeds that vary are marked (the synthetic rows' jitter)
    assert cell(lb.build_tables(frame_of(synthetic_rows()), baseline="2d"), "vits", "pcg", "organ", "auc").significant
    # and the raw t-test would have marked it: a constant non-zero difference gives p = 0
    from scipy.stats import ttest_rel

    assert ttest_rel([85.0, 85.0, 85.0], [80.0, 80.0, 80.0]).pvalue == 0.0


def test_unknown_baseline_and_empty_selection(frame):
    with pytest.raises(UsageError, match="baseline strategy 'acs'"):
        lb.render(frame, baseline="acs")
    with pytest.raises(UsageError, match=r"available protocols: linear; backbones: vitb, vits"):
        lb.render(frame, backbones="vitl")
    with pytest.raises(UsageError, match="unknown leaderboard format"):
        lb.render(frame, fmt="rtf")
    failed = frame.assign(status="failed")
    with pytest.raises(UsageError, match="no successful runs"):
        lb.render(failed)


def test_several_protocols_get_headings(frame):
    both = pd.concat([frame, frame_of(synthetic_rows("finetune"))], ignore_index=True)
    text = lb.render(both)
    assert text.index("### Protocol: linear") < text.index("### Protocol: finetune")
    assert "### Protocol" not in lb.render(both, protocol="finetune")


def test_sort_orders_within_backbone_groups(frame):
    (table,) = lb.build_tables(frame, sort="avg:auc")
    assert [(r.backbone, r.strategy) for r in table.rows] == [
        ("vits", "pcg"), ("vits", "2d"), ("vits", "pcm"), ("vitb", "pcm"), ("vitb", "2d"), ("vitb", "pcg"),
    ]  # fmt: skip
    with pytest.raises(UsageError, match="cannot sort by"):
        lb.build_tables(frame, sort="lidc")


# The paper's data ------------------------------------------------------------------------------------

FLAGGED = [  # printed AVG vs the mean of the printed per-dataset values, Table 1 (linear probing), ViT-B/16
    ("table1-probe", "vitb", "2d", "acc", 79.0, 79.617),
    ("table1-probe", "vitb", "2d", "auc", 85.1, 85.333),
    ("table1-probe", "vitb", "pcg", "acc", 82.0, 82.233),
    ("table1-probe", "vitb", "pcg", "auc", 87.8, 88.017),
]


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    write_reported(DEFAULT_CSV, out / "reported")
    return out


def test_reported_rows_match_the_csv():
    rows = reported_rows()
    raw = list(csv.DictReader(io.StringIO(DEFAULT_CSV.read_text(encoding="utf-8"))))
    assert len(rows) == len(raw) == 522
    assert {r["source"] for r in rows} == {"reported"} and {r["seed"] for r in rows} == {None}
    first = rows[0]
    assert first["value"] == pytest.approx(float(raw[0]["value"]) / 100)
    assert first["citation"] == f"{PAPER} (Table 1)"
    assert len({r["run_key"] for r in rows}) == 14 + 13 + 36  # one per (table, protocol, backbone, strategy)
    assert {r["dataset"] for r in rows} >= {"avg", "organ", "lidc"}


def test_audit_pins_the_papers_inconsistent_averages(paper):
    frame = read_results(paper).frame
    found = [
        (d["protocol"], d["backbone"], d["strategy"], d["metric"], d["printed"], round(d["mean"], 3))
        for d in lb.audit_reported_averages(frame)
    ]
    assert found == FLAGGED
    assert {d["table"] for d in lb.audit_reported_averages(frame)} == {"1"}


def test_printed_averages_shown_as_printed_and_flagged(paper):
    frame = read_results(paper).frame
    text = lb.render(frame, protocol="table1-probe", backbones="vitb")
    (row,) = md_row(text, "2d (reported)")
    assert row[-2:] == ["85.1†", "79.0†"]  # printed, not the recomputed 85.3 / 79.6
    assert "† vitb / 2d (reported), avg ACC: printed avg 79.0 differs from mean of printed values 79.62" in text
    assert text.count("printed avg") == 4
    # with a subset of datasets the printed average no longer applies: recomputed, no flag
    subset = lb.render(frame, protocol="table1-probe", backbones="vitb", datasets=["organ", "nodule"])
    assert "†" not in subset


def test_check_reports_stale_and_missing_tables(paper, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(paper, root)
    study = root / "study1"
    write_atomic(rows_to_table(synthetic_rows()), study / "runs.parquet")
    expected = {str(root / "leaderboard.md"), str(root / "reported" / "leaderboard.md"), str(study / "leaderboard.md")}
    assert set(lb.check(root)) == expected  # nothing written yet: all missing
    assert {str(p) for p in lb.write_all(root)} == expected
    assert lb.check(root) == []
    assert lb.write_all(root) == []  # deterministic: nothing to rewrite
    target = study / "leaderboard.md"
    target.write_text(target.read_text().replace("80.0 ± 1.0", "81.0 ± 1.0", 1))
    assert lb.check(root) == [str(target)]
    (root / "leaderboard.md").unlink()
    assert set(lb.check(root)) == {str(target), str(root / "leaderboard.md")}
    lb.write_all(root)
    assert lb.check(root) == []
    whole = (root / "leaderboard.md").read_text()
    assert "### Protocol: featdice" in whole and "lidc Dice" in whole and re.search(r"\| vits +\| 2d +\|", whole)


def test_plots_write_png_and_svg(frame, tmp_path):
    from liftbench.report.plots import plot

    written = plot(frame_of(synthetic_rows() + reported_extra()), tmp_path / "plots")
    names = sorted(p.name for p in written)
    assert names == ["linear_avg.png", "linear_avg.svg", "linear_nodule.png", "linear_nodule.svg",
                     "linear_organ.png", "linear_organ.svg"]  # fmt: skip
    assert all(p.stat().st_size > 0 for p in written)
    svg = (tmp_path / "plots" / "linear_organ.svg").read_bytes()
    plot(frame_of(synthetic_rows() + reported_extra()), tmp_path / "plots")
    assert (tmp_path / "plots" / "linear_organ.svg").read_bytes() == svg  # deterministic


# --- one configuration per cell -------------------------------------------------------------------


def _pcg_runs(options: str, seeds, value: float, key_prefix: str, sha: str = "a" * 64):
    return [dict(run_key=f"{key_prefix}-{seed}", kind="run", source="measured", dataset="organ", input_size=64,
                 backbone="vits", weights="pretrained", weights_sha256=sha, strategy="pcg", protocol="linear",
                 seed=seed, split="test", metric="auc", value=value + 0.001 * seed, status="ok", options=options)
            for seed in seeds]  # fmt: skip


def test_runs_that_differ_in_an_option_get_their_own_rows():
    """1000-iteration and 40-iteration runs of the same strategy must never be averaged as seeds."""
    rows = _pcg_runs('{"iterations": 1000, "warmup": 50}', (0, 1, 2), 0.90, "long")
    rows += _pcg_runs('{"iterations": 40, "warmup": 4}', (0, 1), 0.50, "short")
    (table,) = lb.build_tables(frame_of(rows), metrics=("auc",))
    cells = {r.label: r.cells[("organ", "auc")] for r in table.rows}
    assert set(cells) == {"pcg iterations=1000 warmup=50", "pcg iterations=40 warmup=4"}
    assert cells["pcg iterations=1000 warmup=50"].n == 3 and cells["pcg iterations=1000 warmup=50"].mean == pytest.approx(90.1)
    assert cells["pcg iterations=40 warmup=4"].n == 2 and cells["pcg iterations=40 warmup=4"].mean == pytest.approx(50.05)


def test_different_weights_with_the_same_name_are_different_rows():
    rows = _pcg_runs("{}", (0, 1), 0.9, "a", sha="a" * 64) + _pcg_runs("{}", (0, 1), 0.6, "b", sha="b" * 64)
    (table,) = lb.build_tables(frame_of(rows), metrics=("auc",))
    assert sorted(r.label for r in table.rows) == ["pcg sha256=aaaaaaaa", "pcg sha256=bbbbbbbb"]


def test_the_same_configuration_and_seed_twice_counts_once():
    """The same run found in two study folders (under two run keys) is one seed, not two."""
    rows = _pcg_runs("{}", (0, 1, 2), 0.9, "study-a") + _pcg_runs("{}", (0,), 0.9, "study-b")
    (table,) = lb.build_tables(frame_of(rows), metrics=("auc",))
    (row,) = table.rows
    assert row.label == "pcg" and row.cells[("organ", "auc")].n == 3
    assert any("1 run(s) repeating a configuration and seed" in note for note in table.notes)


def test_an_option_that_differs_only_between_datasets_splits_nothing():
    rows = _pcg_runs("{}", (0, 1), 0.9, "o")
    for seed in (0, 1):
        rows.append({**rows[0], "run_key": f"n-{seed}", "dataset": "nodule", "seed": seed, "options": '{"iterations": 5}'})
    (table,) = lb.build_tables(frame_of(rows), metrics=("auc",))
    assert [r.label for r in table.rows] == ["pcg"]
