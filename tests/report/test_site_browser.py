"""The leaderboard site in a real browser: headless Chromium through Selenium opens the generated pages from
``file://`` and checks what a reader sees — the tables' cells against the results' own values, sorting by a
click on a header, the plots loaded, a cell's provenance opening on a click.

Without Chromium, its driver or Selenium the tests skip, saying which is missing — unless
``LIFTBENCH_REQUIRE_BROWSER=1`` (set by ``.ci/run``, which installs ``chromium`` and ``chromium-driver``), where
a missing browser fails them instead.
"""

from __future__ import annotations

import math
import os
import shutil

import pytest
from site_results import TINY_STUDY, add_figure1, combined_results, tiny_results

from liftbench.report.site import write_site
from liftbench.run.results import read_results

REQUIRE = os.environ.get("LIFTBENCH_REQUIRE_BROWSER") == "1"


def _missing(problem: str):
    if REQUIRE:
        pytest.fail(f"LIFTBENCH_REQUIRE_BROWSER=1 but no usable browser: {problem}")
    pytest.skip(f"no headless browser: {problem}")


def _tools() -> tuple[str, str]:
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[test]')")
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        _missing(
            f"{'chromium' if not chromium else 'chromedriver'} is not on PATH (apt-get install chromium chromium-driver)"
        )
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    chromium, driver = _tools()
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    try:
        session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    except WebDriverException as exc:
        _missing(f"chromium did not start: {exc.msg or exc}")
    yield session
    session.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(site folder, results frame): the tiny study rendered as a site."""
    folder = tmp_path_factory.mktemp("browser")
    results = tiny_results(folder)
    add_figure1(results)
    write_site([results], folder / "site")
    return folder / "site", read_results(results).frame


def _open(browser, path):
    browser.get(path.resolve().as_uri())


def _expected(frame) -> dict[tuple[str, str, str], str]:
    """(backbone, strategy, metric) -> 'mean ± std' over seeds in percent, computed here from the rows."""
    test = frame[(frame["status"] == "ok") & (frame["split"] == "test")]
    out = {}
    for (backbone, strategy, metric), group in test.groupby(["backbone", "strategy", "metric"]):
        values = [100 * v for v in group["value"]]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        out[(backbone, strategy, metric)] = f"{mean:.1f} ± {std:.1f}"
    return out


def _rows(browser) -> list[list[str]]:
    return [[cell.text for cell in row.find_elements("tag name", "td")]
            for row in browser.find_elements("css selector", "table.leaderboard tbody tr")]  # fmt: skip


def test_the_table_shows_the_results_values(browser, site):
    out, frame = site
    _open(browser, out / "results.html")
    assert browser.title == "liftbench leaderboard: tiny"
    metrics = [th.text for th in browser.find_elements("css selector", "table.leaderboard thead tr:nth-child(2) th")]
    assert metrics == ["AUC", "ACC"]
    expected = _expected(frame)
    rows = _rows(browser)
    assert len(rows) == len(TINY_STUDY.grids[0].backbones) * len(TINY_STUDY.grids[0].strategies)
    for backbone, label, *cells in rows:
        strategy = label.split()[0]
        for metric, text in zip(("auc", "acc"), cells, strict=True):
            assert text.rstrip("*†") == expected[(backbone, strategy, metric)], (backbone, strategy, metric)


def test_clicking_a_header_sorts_and_a_second_click_reverses(browser, site):
    out, _ = site
    _open(browser, out / "results.html")
    header = browser.find_element("css selector", 'table.leaderboard th[data-column="synthetic:auc"]')
    auc = lambda: [float(row[2].split(" ±")[0]) for row in _rows(browser)]  # noqa: E731
    header.click()
    assert header.get_attribute("aria-sort") == "descending" and auc() == sorted(auc(), reverse=True)
    header.click()
    assert header.get_attribute("aria-sort") == "ascending" and auc() == sorted(auc())
    strategy = browser.find_element("css selector", 'table.leaderboard th[data-col="1"]')
    strategy.click()
    labels = [row[1] for row in _rows(browser)]
    assert labels == sorted(labels) and header.get_attribute("aria-sort") is None


def test_the_plots_load(browser, site):
    out, _ = site
    _open(browser, out / "results.html")
    images = browser.find_elements("css selector", "figure img")
    assert len(images) >= 4  # the bar chart, accuracy against cost, Figure 3 and Figure 1
    assert browser.find_elements("css selector", "figure.pvalues img"), "no p-value matrix (Figure 3)"
    assert browser.find_elements("css selector", "#figure1 ~ figure.figure1 img"), "no Figure 1"
    for image in images:
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 0, (
            image.get_attribute("src")
        )


def test_the_index_fits_a_1400_pixel_window(browser, site, tmp_path):
    """A study description of a few hundred characters wraps instead of running off the window's right edge."""
    out, _ = site
    results = tmp_path / "results"
    shutil.copytree(out.parent / "results", results)
    study = (results / "study.toml").read_text(encoding="utf-8")
    long = "every strategy on every dataset with every backbone, " * 8
    (results / "study.toml").write_text(study.replace('description = "', f'description = "{long}', 1), encoding="utf-8")
    write_site([results], tmp_path / "site")
    _open(browser, tmp_path / "site" / "index.html")
    width = browser.execute_script("return document.documentElement.clientWidth")
    right = browser.execute_script("return document.querySelector('table.index').getBoundingClientRect().right")
    assert right <= width, (right, width)


def test_a_cells_provenance_opens_on_a_click(browser, site):
    out, frame = site
    _open(browser, out / "results.html")
    link = browser.find_element("css selector", "table.leaderboard tbody tr:first-child a.cell")
    target = link.get_attribute("href").split("#", 1)[1]
    panel = browser.find_element("id", target)
    assert panel.get_attribute("open") is None and not panel.find_element("css selector", "table").is_displayed()
    backbone, label = _rows(browser)[0][:2]
    link.click()
    assert panel.get_attribute("open") == "true" and panel.find_element("css selector", "table").is_displayed()
    keys = set(frame[(frame["backbone"] == backbone) & (frame["strategy"] == label.split()[0])]["run_key"])
    text = panel.text
    assert len(keys) == 2 and all(key in text for key in keys)  # its two seeds' runs, by key
    sha = frame[frame["run_key"].isin(keys)]["weights_sha256"].iloc[0]  # the clicked cell's runs' weights
    assert "weights_sha256" in text and sha in text and "liftbench_version" in text


def test_the_index_links_to_the_study_page_and_its_study_file(browser, site):
    out, _ = site
    _open(browser, out / "index.html")
    assert "tiny ViT and CNN" in browser.find_element("css selector", "table.index").text
    browser.find_element("link text", "tiny").click()  # the study's name; the page is named after its folder
    assert browser.title == "liftbench leaderboard: tiny"
    href = browser.find_element("link text", "study.toml").get_attribute("href")  # a browser downloads .toml files
    assert href == (out / "results" / "study.toml").resolve().as_uri()
    assert (out / "results" / "study.toml").read_text() == (out.parent / "results" / "study.toml").read_text()


def test_a_combined_tables_cells_open_their_protocols_runs(browser, tmp_path):
    """Table 3's layout: a measured cell of the second protocol and a reported cell each open their own runs."""
    folder = combined_results(tmp_path)
    write_site([folder], tmp_path / "site")
    _open(browser, tmp_path / "site" / "combined.html")
    frame = read_results(folder).frame
    linear = set(frame.loc[frame["protocol"] == "linear", "run_key"])  # the finetune copies are "ft-" + these
    for column, row_text, expect in (
        ("finetune/synthetic:auc", "tiny-vit", lambda text: sum(f"ft-{k}" in text for k in linear) == 2),
        ("finetune/organ:auc", "resnet50", lambda text: "Reported, not measured" in text),
    ):
        index = [th.get_attribute("data-column") for th in browser.find_elements(
            "css selector", "table.leaderboard thead tr:nth-child(2) th")].index(column)  # fmt: skip
        row = next(r for r in browser.find_elements("css selector", "table.leaderboard tbody tr")
                   if r.find_element("css selector", "td").text == row_text)  # fmt: skip
        link = row.find_elements("tag name", "td")[index + 2].find_element("css selector", "a.cell")
        panel = browser.find_element("id", link.get_attribute("href").split("#", 1)[1])
        assert panel.get_attribute("open") is None
        link.click()
        assert panel.get_attribute("open") == "true" and column.split(":")[0] in panel.text and expect(panel.text)
