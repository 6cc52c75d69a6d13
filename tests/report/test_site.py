"""The static leaderboard site without a browser: what it holds, that it is a pure function of the results
(byte-identical renders, ``--site OUT --check``), how the command answers, and the study a table cites."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from site_results import add_figure1, combined_results, tiny_results

from liftbench.cli import main
from liftbench.report.formats import to_csv
from liftbench.report.leaderboard import build_tables, render_folder
from liftbench.report.reported import reported_table
from liftbench.report.site import check_site, render_site, write_site
from liftbench.report.site.pages import cell_runs
from liftbench.report.site.provenance import runs_by_cell
from liftbench.run.results import read_results


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return tiny_results(tmp_path_factory.mktemp("site"))


def test_the_site_holds_a_page_per_study_with_its_tables_plots_and_study(results):
    files = render_site([results])
    assert {"index.html", "results.html", "results/study.toml", "results/leaderboard.csv"} <= set(files)
    assert any(name.startswith("results/plots/") and name.endswith(".png") for name in files)
    assert files["results/study.toml"] == (results / "study.toml").read_bytes()
    tables = build_tables(read_results(results).frame, protocol=["linear"], metrics=["auc", "acc"], baseline="2d")
    assert files["results/leaderboard.csv"].decode() == to_csv(tables)  # the study's layout: baseline 2d
    page = files["results.html"].decode()
    assert page.count('<details class="provenance"') == 4  # one per row and dataset
    assert "liftbench run --study" in page and "differs from &#x27;2d&#x27;" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert 'href="results.html"' in files["index.html"].decode()


def test_the_page_shows_figure1_and_the_pvalue_matrices(results, tmp_path):
    without = render_site([results])
    assert any(n.startswith("results/plots/pvalues_linear_synthetic") for n in without)  # Figure 3
    assert 'class="pvalues"' in without["results.html"].decode() and "Figure 1" not in without["results.html"].decode()
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    written = add_figure1(copy)
    files = render_site([copy])
    page = files["results.html"].decode()
    assert '<h2 id="figure1">Figure 1: lifted features</h2>' in page and 'class="figure1"' in page
    for path in written:
        assert files[f"results/figure1/{path.name}"] == path.read_bytes()


def test_index_descriptions_wrap_and_reported_provenance_cites(tmp_path):
    files = render_site([combined_results(tmp_path)])
    assert "table.index td.text { white-space: normal" in files["index.html"].decode()
    page = files["combined.html"].decode()
    assert "(reported) · " in page and ": reported: " in page
    summaries = [line for line in page.splitlines() if "(reported) · " in line and "<summary>" in line]
    assert summaries and not any("run(s)" in line for line in summaries)


def test_renders_are_byte_identical_and_check_finds_every_stale_file(results, tmp_path):
    out = tmp_path / "site"
    write_site([results], out)
    assert render_site([results]) == render_site([results]) and check_site([results], out) == []
    (out / "results.html").write_text("edited", encoding="utf-8")
    (out / "stray.html").write_text("old page", encoding="utf-8")
    stale = check_site([results], out)
    assert stale == [str(out / "results.html"), f"{out / 'stray.html'} (not in a fresh render)"]
    assert main(["leaderboard", str(results), "--site", str(out), "--check"]) == 1
    assert main(["leaderboard", str(results), "--site", str(out)]) == 0  # rewrites the edit, removes the stray
    assert not (out / "stray.html").exists() and main(["leaderboard", str(results), "--site", str(out), "--check"]) == 0


def test_site_mistakes_exit_2(results, tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(["leaderboard", str(results), "--site", str(foreign)]) == 2
    assert "not a liftbench site" in capsys.readouterr().err and (foreign / "notes.txt").exists()
    assert main(["leaderboard", str(tmp_path / "nowhere"), "--site", str(tmp_path / "s")]) == 2
    assert main(["leaderboard", str(results), "--site", str(tmp_path / "unrendered"), "--check"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_results_root_gets_a_page_per_study_folder(results, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(results, root / "alpha")
    shutil.copytree(results, root / "beta")
    (root / "beta" / "study.toml").unlink()
    files = render_site([root])
    assert {"alpha.html", "beta.html"} <= set(files) and "alpha/study.toml" in files and "beta/study.toml" not in files
    assert "holds no <code>study.toml</code>" in files["beta.html"].decode()


def test_the_committed_table_and_status_cite_the_study(results, capsys):
    text = render_folder(results, "tiny")
    assert "Made by the study [`study.toml`](study.toml) (`tiny`, 8 runs)" in text
    assert f"`liftbench run --study {results}/study.toml` runs it again" in text
    assert text.index("Made by") < text.index("-->")  # above the comment: scripts/readme_leaderboard.py skips it
    assert main(["status", str(results)]) == 0
    assert f"Made by the study {results}/study.toml (tiny, 8 runs)" in capsys.readouterr().out


def test_a_combined_table_links_every_cell_to_its_protocols_runs(tmp_path):
    """The paper's Table 3 layout (``combine = true``): column groups ``protocol/dataset`` resolve to that
    protocol's runs, ``protocol/avg`` to the row's runs over that protocol's datasets, measured and reported."""
    import re

    folder = combined_results(tmp_path)
    page = render_site([folder])["combined.html"].decode()
    assert "<h2>Protocol: linear | finetune</h2>" in page
    summaries = re.findall(r"<summary>([^<]*)</summary>", page)
    assert "tiny-vit · 2d weights=random:0 · linear/synthetic: 2 run(s), seeds 0, 1" in summaries
    assert "tiny-vit · 2d weights=random:0 · finetune/synthetic: 2 run(s), seeds 0, 1" in summaries
    assert any(s.startswith("resnet50 · 3d (reported) · finetune/organ: reported: Yu, Li, Yang: PlaneCycle") for s in summaries)
    assert not any("/avg" in s for s in summaries)  # no row has every dataset of finetune: no avg value to explain
    links, panels = set(re.findall(r'href="#(prov-[^"]*)"', page)), set(re.findall(r'id="(prov-[^"]*)"', page))
    assert links == panels and len(panels) == len(summaries) == 20  # every link opens a panel, every panel linked
    assert "ft-" in page and "Reported, not measured" in page
    frame = pd.concat([read_results(folder).frame, reported_table().to_pandas()], ignore_index=True)
    table = build_tables(frame, protocol=["linear", "finetune"], metrics=["auc"], combine=True)[0]
    assert table.source("finetune/synthetic") == ("finetune", "synthetic") and table.protocols() == ["linear", "finetune"]
    runs = runs_by_cell(frame, table.protocols(), metrics=["auc"])
    row = next(r for r in table.rows if r.backbone == "resnet50")
    assert len(cell_runs(table, row, "finetune/avg", runs)) == 6  # the row's runs over finetune's six datasets


def test_every_table_reads_the_study_layout_the_same_way(results, tmp_path, capsys):
    """The committed table, the board after a run and the site use one helper (``tables_for``): the study's
    protocols, metrics and baseline — and a baseline with no measured rows drops only the test."""
    from dataclasses import replace

    from liftbench.commands.board import print_board
    from liftbench.report.formats import to_markdown
    from liftbench.report.leaderboard import tables_for
    from liftbench.study.model import Layout

    layout = Layout(protocols=("linear",), metrics=("auc", "acc"), baseline="2d")
    expected = to_markdown(tables_for(read_results(results).frame, layout))
    assert "differs from '2d'" in expected and expected in render_folder(results, "tiny")
    print_board([results], replace(layout, metrics=("auc",), baseline="3d"))  # 3d was not run: no test
    out = capsys.readouterr().out
    assert "synthetic AUC" in out and "synthetic ACC" not in out and "paired t-test" not in out
    assert "(reported)" not in out
    print_board([results], replace(layout, protocols=("linear", "finetune"), reported=True))  # the paper's rows too
    out = capsys.readouterr().out
    assert "### Protocol: finetune" in out and "(reported)" in out


def test_the_site_does_not_depend_on_how_the_folder_was_typed(results, tmp_path, monkeypatch):
    monkeypatch.chdir(results.parent)
    typed = [results, f"{results}/", "results", "./results/", f"../{results.parent.name}/results"]
    renders = [render_site([Path(t)]) for t in typed]
    assert all(r == renders[0] for r in renders)
    bare = tmp_path / "bare"
    shutil.copytree(results, bare / "results")
    (bare / "results" / "study.toml").unlink()
    monkeypatch.chdir(bare)
    page = render_site([Path(".")])["results.html"].decode()
    assert "<code>bare/results</code>" in page and render_site([bare]) == render_site([Path(".")])
