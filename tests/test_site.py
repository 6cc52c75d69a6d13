"""The static leaderboard site without a browser: what it holds, that it is a pure function of the results
(byte-identical renders, ``--site OUT --check``), how the command answers, and the study a table cites."""

from __future__ import annotations

import shutil

import pytest
from site_results import tiny_results

from liftbench.cli import main
from liftbench.leaderboard import build_tables, render_folder
from liftbench.leaderboard_format import to_csv
from liftbench.results import read_results
from liftbench.site import check_site, render_site, write_site


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
