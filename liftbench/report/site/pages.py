"""The site's HTML: one page per study (its tables in the paper's layout, plots, provenance, how it was
made) and an index. Pure functions from already computed tables to text; no dates, so an unchanged input
renders the same bytes."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from liftbench.report.formats import AVG_FLAG, MISSING, SIG_MARK, Cell, Table, metric_name, value_text
from liftbench.report.site.assets import CSS, SCRIPT
from liftbench.report.site.provenance import RUN_FIELDS, RunInfo


def esc(text) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class PageData:
    """Everything one study page shows."""

    slug: str
    title: str
    folder: str
    description: str = ""
    study_file: str | None = None  # the study.toml copied beside the page, relative to the site root
    command: str = ""  # how to run it again
    layout: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # run status -> runs
    tables: list[Table] = field(default_factory=list)
    runs: dict[tuple, list[RunInfo]] = field(default_factory=dict)
    plots: list[tuple[str, str]] = field(default_factory=list)  # (png path, svg path) relative to the site root
    figures: list[tuple[str, str]] = field(default_factory=list)  # Figure 1 pictures, (png, svg) likewise
    csv: str | None = None
    problems: list[str] = field(default_factory=list)
    message: str = ""  # why there is no table


def document(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta name=\"generator\" content=\"liftbench leaderboard --site\">\n<title>{esc(title)}</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n<script>{SCRIPT}</script>\n</body>\n</html>\n")  # fmt: skip


# Tables --------------------------------------------------------------------------------------------


def _marks(cell: Cell) -> str:
    marks = (SIG_MARK if cell.significant else "") + (AVG_FLAG if cell.flagged else "")
    return f"<sup>{esc(marks)}</sup>" if marks else ""


def _cell(cell: Cell | None, link: str | None) -> str:
    if cell is None:
        return f'<td data-sort="">{MISSING}</td>'
    text = esc(value_text(cell))
    if link:
        text = f'<a class="cell" href="#{link}">{text}</a>'
    if cell.bold:
        text = f"<strong>{text}</strong>"
    title = f' title="p = {cell.p_value:.3g} against the baseline"' if cell.p_value is not None else ""
    return f'<td data-sort="{cell.mean:.6f}" data-n="{cell.n}"{title}>{text}{_marks(cell)}</td>'


def _prov_id(t: int, r: int, dataset: str, datasets: list[str]) -> str:
    return f"prov-{t}-{r}-{datasets.index(dataset)}"


def cell_runs(table: Table, row, group: str, runs: dict[tuple, list[RunInfo]]) -> list[RunInfo]:
    """The runs behind a row's cells in one column group. A combined table's group ``"p/d"`` is protocol ``p``'s
    dataset ``d`` (:attr:`Table.parts`); an ``avg`` group is every dataset of its protocol shown in the table."""
    protocol, dataset = table.source(group)
    if dataset != "avg":
        return runs.get((protocol, row.backbone, row.label, row.source, dataset), [])
    shown = [d for p, d in map(table.source, (g for g, _ in table.groups())) if p == protocol and d != "avg"]
    return [run for d in shown for run in runs.get((protocol, row.backbone, row.label, row.source, d), [])]


def table_html(table: Table, t: int, runs: dict[tuple, list[RunInfo]]) -> str:
    datasets = [d for d, _ in table.groups()]
    lines = [f'<table class="leaderboard" id="table-{t}" data-protocol="{esc(table.protocol)}">', "<thead>"]
    groups = "".join(f'<th colspan="{len(m)}">{esc(d)}</th>' for d, m in table.groups())
    lines.append('<tr><th rowspan="2" class="text" data-col="0" data-type="text">Backbone</th>'
                 f'<th rowspan="2" class="text" data-col="1" data-type="text">Strategy</th>{groups}</tr>')  # fmt: skip
    metrics = "".join(f'<th data-col="{i + 2}" data-type="num" data-column="{esc(d)}:{esc(m)}">{esc(metric_name(m))}</th>'
                      for i, (d, m) in enumerate(table.columns))  # fmt: skip
    lines += [f"<tr>{metrics}</tr>", "</thead>", "<tbody>"]
    for r, row in enumerate(table.rows):
        cells = []
        for dataset, metric in table.columns:
            link = _prov_id(t, r, dataset, datasets) if cell_runs(table, row, dataset, runs) else None
            cells.append(_cell(row.cells.get((dataset, metric)), link))
        css = ' class="reported"' if row.source == "reported" else ""
        lines.append(f'<tr{css} data-row="{r}"><td class="text">{esc(row.backbone)}</td>'
                     f'<td class="text">{esc(row.label)}</td>{"".join(cells)}</tr>')  # fmt: skip
    lines += ["</tbody>", "</table>"]
    if table.notes:
        lines.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in table.notes) + "</ul>")
    return "\n".join(lines)


def _runs_table(runs: list[RunInfo], metrics: Sequence[str]) -> str:
    if runs and "citation" in runs[0].fields:
        return "".join(f"<p>Reported, not measured: {esc(r.fields['citation'])}</p>" for r in runs[:1])
    head = ["dataset", *(metric_name(m) for m in metrics), *RUN_FIELDS]
    lines = ['<table class="runs">', "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for run in runs:
        values = [f"{run.values[m]:.2f}" if m in run.values else MISSING for m in metrics]
        fields = [run.fields.get(name, "") for name in RUN_FIELDS]
        lines.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in (run.dataset, *values, *fields)) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def provenance_html(table: Table, t: int, runs: dict[tuple, list[RunInfo]]) -> str:
    """One collapsed panel per (row, column group) with the runs behind its cells (:func:`cell_runs`)."""
    groups = table.groups()
    datasets = [d for d, _ in groups]
    metrics = list(dict.fromkeys(m for _, m in table.columns))
    parts = []
    for r, row in enumerate(table.rows):
        for dataset, shown in groups:
            found = cell_runs(table, row, dataset, runs)
            if not found or not any((dataset, m) in row.cells for m in shown):  # no value shown: nothing to explain
                continue
            seeds = sorted({run.fields.get("seed", "") for run in found} - {""}, key=int)
            what = f"{len(found)} run(s)" + (f", seeds {', '.join(seeds)}" if seeds else "")
            if row.source == "reported":  # a figure quoted from a paper has no run: say where it comes from
                what = "reported: " + next((run.fields["citation"] for run in found if run.fields.get("citation")), "cited figure")
            parts.append(f'<details class="provenance" id="{_prov_id(t, r, dataset, datasets)}"><summary>'
                         f"{esc(row.backbone)} · {esc(row.label)} · {esc(dataset)}: {esc(what)}</summary>\n"
                         f"{_runs_table(found, metrics)}\n</details>")  # fmt: skip
    return "\n".join(parts)


# Pages ---------------------------------------------------------------------------------------------


def _made_by(page: PageData) -> str:
    if not page.study_file:
        return '<p class="muted">This folder holds no <code>study.toml</code>: it was not written by a study run.</p>'
    return (f'<p>Made by the study <a href="{esc(page.study_file)}"><code>study.toml</code></a>'
            f"{f' ({esc(page.description)})' if page.description else ''}. Run it again (what is done is skipped):</p>"
            f"<pre>{esc(page.command)}</pre>")  # fmt: skip


def _figure(png: str, svg: str, kind: str) -> str:
    name = png.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return (f'<figure class="{kind}"><a href="{esc(svg)}"><img src="{esc(png)}" alt="{esc(name)}"></a>'
            f"<figcaption>{esc(name)} (<a href=\"{esc(svg)}\">SVG</a>)</figcaption></figure>")  # fmt: skip


def study_page(page: PageData) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(page.counts.items()))
    body = ['<p><a href="index.html">&larr; all studies</a></p>', f"<h1>{esc(page.title)}</h1>",
            f"<p class=\"muted\">Results folder <code>{esc(page.folder)}</code>: {esc(counts or 'no runs')}."
            f"{f' Layout: {esc(page.layout)}.' if page.layout else ''}</p>", _made_by(page)]  # fmt: skip
    for problem in page.problems:
        body.append(f'<p class="muted">Skipped file: {esc(problem)}</p>')
    if page.message:
        body.append(f"<p>No table: {esc(page.message)}</p>")
    for t, table in enumerate(page.tables):
        body.append(f"<h2>Protocol: {esc(table.protocol)}</h2>")
        body.append('<p class="muted">Click a column header to sort; click a value for the runs behind it.</p>')
        body.append(table_html(table, t, page.runs))
        body.append("<h3>Provenance</h3>")
        body.append(provenance_html(table, t, page.runs))
    if page.csv:
        body.append(f'<p>The tables as CSV (one line a cell): <a href="{esc(page.csv)}">{esc(page.csv)}</a></p>')
    if page.figures:
        body.append('<h2 id="figure1">Figure 1: lifted features</h2>')
        body.append('<p class="muted">Frozen lifted features of one volume, one PCA over all strategies (comparable '
                    "colours), on the central HW, DW and DH planes; coh_D: mean cosine similarity of neighbouring "
                    "features along D (1: identical slices), and relative to H/W. Drawn by <code>liftbench show</code>.</p>")
        body += [_figure(png, svg, "figure1") for png, svg in page.figures]
    if page.plots:
        body.append("<h2>Plots</h2>")
        if any("/pvalues_" in png for png, _ in page.plots):
            body.append('<p class="muted">pvalues_*: Figure 3, paired t-test p-values of every strategy against '
                        "every other over common seeds, red where p &lt; 0.05 (the test behind the tables' marks).</p>")
        body += [_figure(png, svg, "pvalues" if "/pvalues_" in png else "plot") for png, svg in page.plots]
    return document(f"liftbench leaderboard: {page.title}", "\n".join(body))


def index_page(pages: list[PageData]) -> str:
    rows = []
    for page in pages:
        runs = sum(page.counts.values())
        protocols = ", ".join(t.protocol for t in page.tables) or MISSING
        made = f'<a href="{esc(page.study_file)}">study.toml</a>' if page.study_file else MISSING
        rows.append(f'<tr><td class="text"><a href="{esc(page.slug)}.html">{esc(page.title)}</a></td>'
                    f'<td class="text">{esc(page.description)}</td><td>{runs}</td><td class="text">{esc(protocols)}</td>'
                    f'<td class="text">{made}</td></tr>')  # fmt: skip
    body = ("<h1>liftbench leaderboards</h1>\n<p>How should a pretrained 2D backbone be lifted to 3D volumes? One page "
            "per study: its tables in the paper's layout (measured beside reported, mean &plusmn; std over seeds, "
            "significance marks), plots, and the runs behind every cell.</p>\n"
            '<table class="index"><tr><th class="text">study</th><th class="text">description</th><th>runs</th>'
            '<th class="text">protocols</th><th class="text">made by</th></tr>\n' + "\n".join(rows) + "\n</table>\n"
            "<p class=\"muted\">Generated by <code>liftbench leaderboard --site</code> from the result files; "
            "<code>--site OUT --check</code> verifies a site is current.</p>")  # fmt: skip
    return document("liftbench leaderboards", body)
