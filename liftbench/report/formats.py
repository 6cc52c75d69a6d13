"""Leaderboard tables as text: Markdown, LaTeX (booktabs), HTML and CSV.

:mod:`liftbench.report.leaderboard` computes a :class:`Table` (cells already in percent, with their bold /
significance / audit marks and the notes that explain them); this module only writes it out. Notes are plain
Unicode sentences; each format escapes them its own way.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field

from tabulate import tabulate

from liftbench.metrics import METRIC_NAMES

MISSING = "–"
SIG_MARK = "*"
AVG_FLAG = "†"


@dataclass
class Cell:
    """One table cell, in percent."""

    mean: float
    std: float | None = None  # None with a single value
    n: int = 1
    bold: bool = False
    significant: bool = False
    p_value: float | None = None
    printed: bool = False  # a reported average shown as the paper printed it
    flagged: bool = False  # ... and it differs from the mean of the printed values beyond rounding
    seeds: dict[float, float] = field(default_factory=dict)  # seed -> value: what the paired tests compare


@dataclass
class Row:
    backbone: str
    strategy: str
    label: str
    source: str
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)


@dataclass
class Table:
    protocol: str
    columns: list[tuple[str, str]]  # (dataset, metric); the dataset "avg" last
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    # a combined table (protocols side by side) names its column groups "protocol/dataset"; this maps each
    # back to what it joined, so the runs behind a cell can be found. Empty for a one-protocol table.
    parts: dict[str, tuple[str, str]] = field(default_factory=dict)

    def source(self, group: str) -> tuple[str, str]:
        """(protocol, dataset) of a column group: ``"linear/lidc"`` of a combined table is (linear, lidc)."""
        return self.parts.get(group, (self.protocol, group))

    def protocols(self) -> list[str]:
        """The protocols whose results the table shows (several for a combined table)."""
        return list(dict.fromkeys(p for p, _ in self.parts.values())) or [self.protocol]

    def groups(self) -> list[tuple[str, list[str]]]:
        """Column groups in order: (dataset, [metric, ...])."""
        out: list[tuple[str, list[str]]] = []
        for dataset, metric in self.columns:
            if out and out[-1][0] == dataset:
                out[-1][1].append(metric)
            else:
                out.append((dataset, [metric]))
        return out


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def value_text(cell: Cell, pm: str = "±") -> str:
    text = f"{cell.mean:.1f}"
    if cell.std is not None:
        text += f" {pm} {cell.std:.1f}"
    return text


def _body(table: Table):
    """(backbone shown only on the first row of its group, row, is_first_of_group)."""
    last = None
    for row in table.rows:
        first = row.backbone != last
        last = row.backbone
        yield (row.backbone if first else ""), row, first


# Markdown ------------------------------------------------------------------------------------------

# What Markdown (GitHub's, tables and math included) could read as markup, raw HTML or a cell's end: each is
# backslash-escaped (CommonMark lets any ASCII punctuation be), so a name such as `<script>`, `a|b` or `x_1_`
# shows as typed. '-', '.', '(' and ')' stay: they are markup only after a character escaped here or at the
# start of a line, which no cell or note is.
_MD_SPECIAL = frozenset("\\`*_{}[]<>#|~$&!+")


def md_escape(text: str) -> str:
    """``text`` as literal Markdown: specials backslash-escaped, line breaks (which end a table row) as spaces."""
    text = " ".join(str(text).splitlines())
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)



def _md_cell(cell: Cell | None) -> str:
    if cell is None:
        return MISSING
    text = value_text(cell)
    if cell.bold:
        text = f"**{text}**"
    return text + ("\\*" if cell.significant else "") + (AVG_FLAG if cell.flagged else "")


def to_markdown(tables: list[Table]) -> str:
    parts = []
    for table in tables:
        if len(tables) > 1:
            parts.append(f"### Protocol: {md_escape(table.protocol)}\n")
        headers = ["Backbone", "Strategy"] + [md_escape(f"{d} {metric_name(m)}") for d, m in table.columns]
        body = [
            [md_escape(shown), md_escape(row.label)] + [_md_cell(row.cells.get(c)) for c in table.columns]
            for shown, row, _ in _body(table)
        ]
        parts.append(tabulate(body, headers=headers, tablefmt="github", disable_numparse=True) + "\n")
        if table.notes:
            parts.append("\n".join(f"- {md_escape(note)}" for note in table.notes) + "\n")
    return "\n".join(parts)


# LaTeX ---------------------------------------------------------------------------------------------

_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "†": r"$^{\dagger}$",
    "|": r"\textbar{}",
    "–": "--",
    "≥": r"$\geq$",
    "<": r"$<$",
    ">": r"$>$",
}


def tex_escape(text: str) -> str:
    """``text`` as literal LaTeX: specials as their commands, line breaks (which would end a ``%`` comment or
    leave a blank line, a paragraph break inside a cell) as spaces."""
    return "".join(_TEX.get(ch, ch) for ch in " ".join(str(text).splitlines()))


def _tex_cell(cell: Cell | None) -> str:
    if cell is None:
        return "--"
    text = value_text(cell, pm=r"$\pm$")
    if cell.bold:
        text = rf"\textbf{{{text}}}"
    marks = ("*" if cell.significant else "") + (r"\dagger" if cell.flagged else "")
    return text + (f"$^{{{marks}}}$" if marks else "")


def to_latex(tables: list[Table]) -> str:
    """A fragment for a document with ``\\usepackage{booktabs}``: one tabular (and its notes) a protocol."""
    parts = []
    for table in tables:
        lines = [f"% liftbench leaderboard, protocol {tex_escape(table.protocol)}"]
        if len(tables) > 1:
            lines.append(rf"\paragraph{{Protocol: {tex_escape(table.protocol)}}}")
        lines.append(r"\begin{tabular}{ll" + "c" * len(table.columns) + "}")
        lines.append(r"\toprule")
        top, rules, col = [" ", " "], [], 3
        for dataset, metrics in table.groups():
            top.append(rf"\multicolumn{{{len(metrics)}}}{{c}}{{{tex_escape(dataset)}}}")
            rules.append(rf"\cmidrule(lr){{{col}-{col + len(metrics) - 1}}}")
            col += len(metrics)
        lines.append(" & ".join(top) + r" \\")
        lines.append(" ".join(rules))
        lines.append(" & ".join(["Backbone", "Strategy"] + [tex_escape(metric_name(m)) for _, m in table.columns]) + r" \\")
        lines.append(r"\midrule")
        for index, (shown, row, first) in enumerate(_body(table)):
            if first and index:
                lines.append(r"\midrule")
            cells = [tex_escape(shown), tex_escape(row.label)] + [_tex_cell(row.cells.get(c)) for c in table.columns]
            lines.append(" & ".join(cells) + r" \\")
        lines.append(r"\bottomrule")
        lines.append(r"\end{tabular}")
        if table.notes:
            lines.append("")
            lines.append(r"\begingroup\footnotesize")
            lines.extend(tex_escape(note) + r"\par" for note in table.notes)
            lines.append(r"\endgroup")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


# HTML ----------------------------------------------------------------------------------------------


def _html_cell(cell: Cell | None) -> str:
    if cell is None:
        return "<td>&ndash;</td>"
    text = html.escape(value_text(cell)).replace("±", "&plusmn;")
    if cell.bold:
        text = f"<strong>{text}</strong>"
    marks = ("*" if cell.significant else "") + ("&dagger;" if cell.flagged else "")
    return f"<td>{text}{f'<sup>{marks}</sup>' if marks else ''}</td>"


def _html_text(text: str) -> str:
    return html.escape(text).replace("±", "&plusmn;").replace("†", "&dagger;")


def to_html(tables: list[Table]) -> str:
    parts = []
    for table in tables:
        lines = []
        if len(tables) > 1:
            lines.append(f"<h3>Protocol: {html.escape(table.protocol)}</h3>")
        lines.append(f'<table class="liftbench-leaderboard" data-protocol="{html.escape(table.protocol)}">')
        lines.append("<thead>")
        groups = "".join(f'<th colspan="{len(m)}">{html.escape(d)}</th>' for d, m in table.groups())
        lines.append(f'<tr><th rowspan="2">Backbone</th><th rowspan="2">Strategy</th>{groups}</tr>')
        lines.append("<tr>" + "".join(f"<th>{html.escape(metric_name(m))}</th>" for _, m in table.columns) + "</tr>")
        lines.append("</thead>")
        lines.append("<tbody>")
        for shown, row, _ in _body(table):
            cells = "".join(_html_cell(row.cells.get(c)) for c in table.columns)
            lines.append(f"<tr><th>{html.escape(shown)}</th><td>{html.escape(row.label)}</td>{cells}</tr>")
        lines.append("</tbody>")
        lines.append("</table>")
        if table.notes:
            lines.append("<ul>" + "".join(f"<li>{_html_text(n)}</li>" for n in table.notes) + "</ul>")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


# CSV -----------------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "protocol", "backbone", "strategy", "source", "dataset", "metric",
    "mean", "std", "n", "bold", "significant", "p_value", "printed_avg", "avg_flagged",
]  # fmt: skip


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def to_csv(tables: list[Table]) -> str:
    """Long form, one line a cell; mean and std in percent, n = values (seeds) behind the cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for table in tables:
        for row in table.rows:
            for dataset, metric in table.columns:
                cell = row.cells.get((dataset, metric))
                if cell is None:
                    continue
                writer.writerow(
                    [table.protocol, row.backbone, row.label, row.source, dataset, metric,
                     _num(cell.mean), _num(cell.std), cell.n, int(cell.bold), int(cell.significant),
                     _num(cell.p_value), int(cell.printed), int(cell.flagged)]
                )  # fmt: skip
    return out.getvalue()


FORMATS = {"md": to_markdown, "latex": to_latex, "html": to_html, "csv": to_csv}
