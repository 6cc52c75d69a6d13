"""Check that a demo run from scratch reproduces the committed demo table, cell for cell at printed precision.

CI runs the demo study into an empty folder with an empty feature cache, then this script:

    liftbench run --study demo --results "$TMP/demo" --no-leaderboard   (with LIFTBENCH_CACHE empty)
    python scripts/check_demo.py "$TMP/demo"                             # exit 1 naming each differing cell

It renders the fresh folder the way the committed ``results/demo/leaderboard.md`` is rendered and compares the
Markdown tables' cells (mean ± std to one decimal, with their bold marks); the lines around the table (the
study it was made by, the folder's name) are not compared.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "results" / "demo" / "leaderboard.md"


def cells(text: str) -> dict[tuple[str, str], str]:
    """(row, column) -> cell text of the Markdown tables in ``text``; a row is named by its backbone (carried
    down from the first row of its group) and strategy label."""
    out: dict[tuple[str, str], str] = {}
    header: list[str] = []
    backbone = ""
    for line in text.splitlines():
        if not line.startswith("|"):
            header = [] if not line.strip() else header
            continue
        parts = [part.strip() for part in line.strip().strip("|").split("|")]
        if not header:
            header = parts
            continue
        if set("".join(parts)) <= set("-: "):
            continue
        backbone = parts[0] or backbone
        for column, value in zip(header[2:], parts[2:], strict=False):
            out[(f"{backbone} / {parts[1]}", column)] = value
    return out


def differences(fresh: str, committed: str) -> list[str]:
    a, b = cells(committed), cells(fresh)
    problems = [f"{row}, {col}: committed {a[(row, col)]!r}, fresh {b.get((row, col), 'missing')!r}"
                for row, col in a if a[(row, col)] != b.get((row, col))]  # fmt: skip
    problems += [
        f"{row}, {col}: not in the committed table (fresh {b[(row, col)]!r})" for row, col in b if (row, col) not in a
    ]
    if not a:
        problems.append("the committed leaderboard holds no table")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fresh", type=Path, help="the results folder the demo was just run into")
    parser.add_argument(
        "--committed", type=Path, default=COMMITTED, help=f"the committed table (default {COMMITTED.relative_to(ROOT)})"
    )
    args = parser.parse_args(argv)
    from liftbench.report.leaderboard import render_folder

    if not args.fresh.is_dir():
        print(f"check_demo: results folder {str(args.fresh)!r} does not exist", file=sys.stderr)
        return 2
    problems = differences(render_folder(args.fresh, "demo"), args.committed.read_text(encoding="utf-8"))
    for problem in problems:
        print(f"demo differs: {problem}", file=sys.stderr)
    if problems:
        print(f"the demo run from scratch does not reproduce {args.committed}", file=sys.stderr)
        return 1
    print(f"the demo run from scratch reproduces every cell of {args.committed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
