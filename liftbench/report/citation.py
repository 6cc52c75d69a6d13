"""The line a committed leaderboard carries to say how it was made: the study recorded in its folder and
the command that runs it again."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from liftbench.report.formats import md_escape
from liftbench.study.model import STUDY_FILE, folder_study, rerun_command


def citation(folder: Path, scheduled: Collection[str] | None = None, *, rerun: str | None = None,
             plain: bool = False) -> str:  # fmt: skip
    """The Markdown line a committed leaderboard carries to say how it was made: the study file in its folder
    and the command that runs it again ('' without one). Built from the file's content, never from the path
    the command was given, so the same results render the same line from anywhere; ``scheduled`` (the
    strategies that take a schedule, as :meth:`Grid.cells` takes it) makes its run count exact.

    ``rerun`` is the study file's path as the reader reaches it (``liftbench status`` passes the folder it was
    given, which is right after a copy or rename); without it the folder's recorded ``results``. ``plain``:
    text for a terminal (the path instead of a link, no code spans)."""
    study, text, problem = folder_study(folder)
    shown = (rerun or STUDY_FILE) if plain else f"[`{STUDY_FILE}`]({STUDY_FILE})"
    if study is None:
        if text is None:
            return ""
        return f"Made by {shown} (unreadable: {problem if plain else md_escape(problem)}).\n\n"
    command = rerun_command(rerun or f"{study.results.rstrip('/')}/{STUDY_FILE}")
    code = (lambda s: s) if plain else (lambda s: f"`{s}`" if "`" not in s else md_escape(s))
    return (
        f"Made by the study {shown} ({code(study.name)}, {study.runs(scheduled)} runs); "
        f"{code(command)} runs it again.\n\n"
    )
