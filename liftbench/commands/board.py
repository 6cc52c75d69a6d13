"""``liftbench leaderboard``: render, check or rewrite leaderboards from results folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from liftbench.errors import ExitCode, UsageError, cannot_write, writing
from liftbench.run.results import read_results, write_text_atomic


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def load_frame(dirs: list[Path], with_reported: bool | None) -> tuple[pd.DataFrame, list[str]]:
    """Rows of every folder plus the paper's rows when asked for; unreadable files are reported on
    stderr and returned, so the command can exit non-zero after showing what it could read."""
    folder = read_results(dirs)
    for problem in folder.problems:
        print(f"liftbench: warning: {problem}", file=sys.stderr)
    frame = folder.frame
    if with_reported and not (frame["source"] == "reported").any():
        from liftbench.report.reported import reported_table

        frame = pd.concat([frame, reported_table().to_pandas()], ignore_index=True)
    return frame, folder.problems


def print_board(dirs: list[Path], layout=None) -> None:
    """The leaderboard of freshly written results, as Markdown on stdout (used after ``run``), in the
    layout of the study that ran (:func:`liftbench.report.leaderboard.tables_for`)."""
    from liftbench.report.formats import to_markdown
    from liftbench.report.leaderboard import tables_for, with_reported

    frame = with_reported(load_frame(dirs, with_reported=False)[0], layout)
    try:
        print(to_markdown(tables_for(frame, layout)))
    except UsageError as exc:
        print(f"(no leaderboard: {exc})")


def site_command(args) -> int:
    """``--site OUT``: write the static site, or with ``--check`` verify the one in OUT is current."""
    from liftbench.report.site import check_site, write_site

    dirs, out = [Path(d) for d in args.dirs], Path(args.site)
    if args.check:
        stale = check_site(dirs, out)
        for path in stale:
            print(f"stale site file: {path}", file=sys.stderr)
        if stale:
            print(f"rerender with: liftbench leaderboard {' '.join(map(str, dirs))} --site {out}", file=sys.stderr)
            return ExitCode.RUNS_FAILED
        print(f"site {out} is up to date")
        return ExitCode.OK
    written = write_site(dirs, out)
    print(f"wrote {len(written)} file(s); open {out / 'index.html'}")
    return ExitCode.OK


def write_plots(results_root: Path) -> None:
    """Bar charts, accuracy-against-cost plots and p-value matrices beside each study's table, in ``<study>/plots/``."""
    from liftbench.report import leaderboard
    from liftbench.report.plots import plot, plot_cost
    from liftbench.report.plots_pvalues import plot_pvalues

    for folder in leaderboard.targets(results_root).values():
        if folder == results_root:
            continue
        frame = read_results(folder).frame
        try:
            written = plot(frame, folder / "plots", metrics=None) + plot_cost(frame, folder / "plots")
            written += plot_pvalues(frame, folder / "plots", metrics=None)
        except UsageError:  # nothing to plot
            continue
        except OSError as exc:
            raise cannot_write(folder / "plots", "--write", exc) from None
        print(f"wrote {len(written)} plot files in {folder / 'plots'}")


def leaderboard_command(args) -> int:
    from liftbench.report import leaderboard

    dirs = [Path(d) for d in args.dirs]
    if getattr(args, "site", None):
        return site_command(args)
    if args.check or args.write:
        stale_all = []
        for root in dirs:
            if not root.is_dir():
                raise UsageError(f"results folder {str(root)!r} does not exist")
            if args.write:  # what --write writes is current by construction: no second render to check it
                for path in leaderboard.write_all(root):
                    print(f"wrote {path}")
                write_plots(root)
            else:
                stale_all += leaderboard.check(root)
        if stale_all:
            for path in stale_all:
                print(f"stale leaderboard: {path} differs from what the committed results give", file=sys.stderr)
            print("rerender with: liftbench leaderboard --write", file=sys.stderr)
            return ExitCode.RUNS_FAILED
        if args.check:
            print("leaderboards are up to date")
        return ExitCode.OK
    frame, problems = load_frame(dirs, args.reported)
    text = leaderboard.render(
        frame,
        fmt=args.format,
        protocol=_split(args.protocol),
        metrics=_split(args.metric) or None,
        backbones=_split(args.backbones),
        datasets=_split(args.datasets),
        reported=args.reported is not False,
        baseline=args.baseline,
        sort=args.sort,
        combine=args.combine,
    )
    if args.out:
        with writing(args.out, "--out"):
            out = write_text_atomic(Path(args.out), text)
        print(f"wrote {out}")
    else:
        print(text)
    return ExitCode.RUNS_FAILED if problems else ExitCode.OK
