"""The site's style and its one script, inlined in every page so a page works alone, from ``file://``,
with no server and nothing fetched from elsewhere.

The script does two things: clicking a column header sorts the table's rows by that column (numbers by
the cell's mean, best first on the first click, then toggling; text A to Z first), and following a link to
a provenance panel opens it.
"""

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #1b1f24; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; margin-top: 1.6em; } h3 { font-size: 1.1em; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.92em; }
pre { background: #f4f5f7; padding: 0.6em 0.8em; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #d0d4da; padding: 0.25em 0.55em; text-align: right; white-space: nowrap; }
th { background: #f1f3f5; }
td.text, th.text { text-align: left; }
table.index { max-width: 100%; } table.index td.text { white-space: normal; overflow-wrap: anywhere; }
table.leaderboard th[data-col] { cursor: pointer; user-select: none; }
table.leaderboard th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.leaderboard th[aria-sort="descending"]::after { content: " \\25BC"; }
table.leaderboard tr.reported td { color: #57606a; font-style: italic; }
td a.cell { color: inherit; text-decoration: none; border-bottom: 1px dotted #8c959f; }
td a.cell:hover { background: #fff8c5; }
details.provenance { margin: 0.3em 0; border: 1px solid #d0d4da; padding: 0.2em 0.6em; }
details.provenance[open] { background: #fbfbfc; }
details.provenance:target { outline: 2px solid #0969da; }
table.runs th, table.runs td { font-size: 0.88em; text-align: left; white-space: normal; }
ul.notes { font-size: 0.92em; color: #424a53; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; } figure img { max-width: 100%; border: 1px solid #e1e4e8; }
figcaption { font-size: 0.85em; color: #57606a; }
.muted { color: #57606a; }
"""

SCRIPT = """
(function () {
  function key(row, col) {
    var cell = row.cells[col];
    var v = cell ? cell.getAttribute("data-sort") : null;
    return v === null ? (cell ? cell.textContent.trim() : "") : v;
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0], col = Number(th.getAttribute("data-col"));
    var numeric = th.getAttribute("data-type") === "num";
    var before = th.getAttribute("aria-sort");
    var dir = before ? (before === "ascending" ? "descending" : "ascending") : (numeric ? "descending" : "ascending");
    table.querySelectorAll("th[data-col]").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var sign = dir === "ascending" ? 1 : -1;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col);
      if (numeric) {
        var missingX = x === "", missingY = y === "";
        if (missingX || missingY) { return missingX - missingY; }  // missing cells last either way
        return sign * (Number(x) - Number(y));
      }
      return sign * x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function openTarget(id) {
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; }
  }
  document.addEventListener("click", function (event) {
    var th = event.target.closest("table.leaderboard th[data-col]");
    if (th) { sortBy(th); return; }
    var link = event.target.closest("a.cell");
    if (link) { openTarget(link.getAttribute("href").slice(1)); }
  });
  openTarget(window.location.hash.slice(1));
})();
"""
