"""Keep README.md's leaderboard (between its markers) equal to the committed demo study's table.

This is the repository's business, not the installed command's: ``liftbench leaderboard --write``
renders the tables under ``results/``; this script copies one of them into the README.

    python scripts/readme_leaderboard.py          # fail (exit 1) naming README.md if it is stale
    python scripts/readme_leaderboard.py --write  # rewrite the README's section
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "results" / "demo" / "leaderboard.md"
START, END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"


def fresh_readme(readme: str, table: str) -> str:
    """The README text with its leaderboard section replaced by ``table``'s body (after its header comment)."""
    body = table.split("-->", 1)[-1].strip()
    head, rest = readme.split(START, 1)
    return f"{head}{START}\n{body}\n{END}{rest.split(END, 1)[-1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite README.md instead of checking it")
    args = parser.parse_args(argv)
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    fresh = fresh_readme(readme, STUDY.read_text(encoding="utf-8"))
    if fresh == readme:
        print("README leaderboard is up to date")
        return 0
    if args.write:
        readme_path.write_text(fresh, encoding="utf-8")
        print(f"wrote {readme_path}")
        return 0
    print(f"stale leaderboard: {readme_path} differs from {STUDY}; run: python scripts/readme_leaderboard.py --write", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
