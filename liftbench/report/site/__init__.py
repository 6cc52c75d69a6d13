"""A static leaderboard site: ``liftbench leaderboard DIR... --site OUT``.

``OUT/index.html`` lists the studies; ``OUT/<study>.html`` shows one results folder — its tables in the layout
its study records (``study.toml``'s ``[leaderboard]``: protocols, metrics, baseline, reported rows), built by
:func:`liftbench.report.leaderboard.build_tables` like every other leaderboard, the plots of :mod:`liftbench.report.plots`,
the runs behind every cell, and the study file that made it. Plain HTML with inline CSS and a few lines of
script: it works from ``file://``, with no server and nothing fetched from elsewhere.

A study page also shows the folder's Figure 1 pictures (``<folder>/figure1/``, written by ``liftbench show``).
The plots include the p-value matrices of :mod:`liftbench.report.plots_pvalues` (Figure 3).

The site is a pure function of the result files: no dates, and files are compared byte for byte by
:func:`check_site` (``--site OUT --check``), so a stale site is caught like a stale table.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from liftbench.errors import UsageError, writing
from liftbench.report.site.pages import PageData, index_page, study_page
from liftbench.run.results import read_results, replace_atomic, result_files
from liftbench.study.model import STUDY_FILE, Study, folder_study, rerun_command

FIGURE1_DIR = "figure1"  # a results folder's Figure 1 pictures (liftbench show --out <folder>/figure1)
MARKER = ".liftbench-site"  # written into OUT: a folder with it is a site liftbench may prune


def folders(dirs: list[Path]) -> list[Path]:
    """The results folders a site shows: each DIR that holds runs itself, and each study folder under it."""
    from liftbench.report.leaderboard import targets

    found: list[Path] = []
    for root in map(Path, dirs):
        if not root.is_dir():
            raise UsageError(f"results folder {str(root)!r} does not exist")
        own = any(path.parent == root for path in result_files(root))
        children = [folder for folder in targets(root).values() if folder != root]
        found += ([root] if own or not children else []) + children
    return list(dict.fromkeys(found))


def _study(folder: Path) -> tuple[Study | None, str | None]:
    return folder_study(folder)[:2]


def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.") or "study"
    slug, n = base, 2
    while slug in taken or slug == "index":
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def _plots(frame, selection: dict, slug: str, files: dict[str, bytes]) -> list[tuple[str, str]]:
    from liftbench.report.plots import plot, plot_cost
    from liftbench.report.plots_pvalues import plot_pvalues

    with tempfile.TemporaryDirectory() as tmp:
        try:
            written = plot(frame, Path(tmp), **selection) + plot_cost(frame, Path(tmp)) + plot_pvalues(frame, Path(tmp), **selection)
        except UsageError:
            return []
        stems = sorted({p.stem for p in written})
        for path in written:
            files[f"{slug}/plots/{path.name}"] = path.read_bytes()
    return [(f"{slug}/plots/{stem}.png", f"{slug}/plots/{stem}.svg") for stem in stems]


def _figure1(folder: Path, slug: str, files: dict[str, bytes]) -> list[tuple[str, str]]:
    """The folder's Figure 1 pictures (``<folder>/figure1/*.png`` with their SVGs, as ``liftbench show --out
    <folder>/figure1`` writes them), copied beside the page. Files, not a fresh render: the site stays a pure
    function of what the folder holds, and needs neither the backbones' weights nor the data."""
    shown = []
    for png in sorted((folder / FIGURE1_DIR).glob("*.png")):
        svg = png.with_suffix(".svg")
        if not svg.is_file():
            continue
        for path in (png, svg):
            files[f"{slug}/{FIGURE1_DIR}/{path.name}"] = path.read_bytes()
        shown.append((f"{slug}/{FIGURE1_DIR}/{png.name}", f"{slug}/{FIGURE1_DIR}/{svg.name}"))
    return shown


def _page(folder: Path, shown: str, slug: str, files: dict[str, bytes]) -> PageData:
    """One study page; ``shown`` is how the page names the folder (never the path as typed: see :func:`_shown`)."""
    from liftbench.report.formats import to_csv
    from liftbench.report.leaderboard import layout_selection, tables_for, with_reported
    from liftbench.report.site.provenance import runs_by_cell

    results = read_results(folder)
    frame, problems = results.frame, results.problems
    study, study_text = _study(folder)
    page = PageData(slug=slug, title=study.name if study else folder.resolve().name, folder=shown, problems=problems,
                    description=study.description if study else "",
                    layout=study.leaderboard.describe() if study else "")  # fmt: skip
    runs = frame[(frame["kind"] == "run") & (frame["source"].fillna("measured") != "reported")]  # measured runs only
    page.counts = {str(k): int(v) for k, v in runs.drop_duplicates("run_key")["status"].value_counts().items()}
    page.figures = _figure1(folder, slug, files)
    if study_text is not None:
        files[f"{slug}/{STUDY_FILE}"] = study_text.encode("utf-8")
        page.study_file = f"{slug}/{STUDY_FILE}"
        page.command = rerun_command(_reached(folder) / STUDY_FILE)
    chosen = study.leaderboard if study else None  # no study: everything the folder holds
    frame = with_reported(frame, chosen)
    selection = layout_selection(chosen)
    try:
        page.tables = tables_for(frame, chosen)
    except UsageError as exc:
        page.message = str(exc)
        return page
    protocols = list(dict.fromkeys(p for table in page.tables for p in table.protocols()))
    page.runs = runs_by_cell(frame, protocols, metrics=selection["metrics"])
    files[f"{slug}/leaderboard.csv"] = to_csv(page.tables).encode("utf-8")
    page.csv = f"{slug}/leaderboard.csv"
    page.plots = _plots(frame, selection, slug, files)
    return page


def _reached(folder: Path) -> Path:
    """The folder as the command that runs its study again must name it: its actual path (not the ``results``
    recorded when it was made, wrong after a copy or a rename), relative to the directory the site is rendered
    in when it lies below it (CI renders from the repository's root: ``results/demo``), else absolute. The
    same however the folder was typed."""
    actual, here = folder.resolve(), Path.cwd().resolve()
    return actual.relative_to(here) if actual.is_relative_to(here) else actual


def _shown(folder: Path, dirs: list[Path]) -> str:
    """How a page names its folder: the ``results`` its study records (what ``liftbench run --study`` was given),
    else the folder from the name of the DIR it was found under — never the path as typed, so the same results
    render the same site (``--check``) from any directory and however DIR was spelled."""
    study = _study(folder)[0]
    if study is not None:
        return study.results
    root = next((Path(d) for d in dirs if folder == Path(d) or Path(d) in folder.parents), folder)
    name = root.resolve().name
    return name if folder == root else f"{name}/{folder.relative_to(root).as_posix()}"


def render_site(dirs: list[Path]) -> dict[str, bytes]:
    """Every file of the site, by path relative to its root."""
    files: dict[str, bytes] = {}
    taken: set[str] = set()
    pages = []
    for folder in folders(dirs):
        page = _page(folder, _shown(folder, dirs), _slug(folder.resolve().name, taken), files)
        files[f"{page.slug}.html"] = study_page(page).encode("utf-8")
        pages.append(page)
    files["index.html"] = index_page(pages).encode("utf-8")
    files[MARKER] = b"liftbench leaderboard site: files here are rewritten by `liftbench leaderboard --site`\n"
    return files


def _on_disk(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} if out.is_dir() else set()


def write_site(dirs: list[Path], out: Path) -> list[Path]:
    """Render the site into ``out`` (each changed file atomically); files an earlier render left that this
    one no longer has are removed when ``out`` is a liftbench site. Returns the files written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--site {str(out)!r} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UsageError(
            f"--site {str(out)!r} is a non-empty folder that is not a liftbench site; choose an empty or new folder"
        )
    files = render_site(dirs)
    written = []
    for rel, data in files.items():
        path = out / rel
        if not path.is_file() or path.read_bytes() != data:
            with writing(path, "--site"):
                replace_atomic(path, lambda tmp, data=data: tmp.write_bytes(data))
            written.append(path)
    for rel in sorted(_on_disk(out) - set(files)):
        with writing(out / rel, "--site"):
            (out / rel).unlink()
    return written


def check_site(dirs: list[Path], out: Path) -> list[str]:
    """Files of the site in ``out`` that are missing, differ from a fresh render, or should not be there."""
    out = Path(out)
    if not out.is_dir():
        raise UsageError(f"--site {str(out)!r} does not exist; render it first: liftbench leaderboard ... --site {out}")
    files = render_site(dirs)
    stale = [
        str(out / rel) for rel, data in files.items() if not (out / rel).is_file() or (out / rel).read_bytes() != data
    ]
    return stale + [f"{out / rel} (not in a fresh render)" for rel in sorted(_on_disk(out) - set(files))]
