"""Errors that mean "the user asked for something wrong", kept apart from bugs.

The CLI turns a :class:`UsageError` into a one-paragraph message and exit status 2, with no
traceback; every other exception is a defect (or a failed run, recorded as such by the runner).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """What the ``liftbench`` command exits with."""

    OK = 0
    RUNS_FAILED = 1  # some runs failed (each recorded with its error), a table is stale, a file unreadable
    USAGE = 2  # a user mistake: unknown name, bad option value, missing file
    INTERRUPTED = 130  # Ctrl-C: finished runs are saved; the same command resumes


class UsageError(Exception):
    """A user mistake: an unknown name, a bad option value, a missing file. Exit status 2."""

    exit_status = ExitCode.USAGE


class PluginError(UsageError):
    """Two plugins claim the same name, or a plugin registers or provides something malformed."""


class MissingFileError(UsageError):
    """A weight or data file the run needs is not on disk and cannot be downloaded."""


class CannotLiftError(Exception):
    """A strategy cannot lift this backbone (e.g. a 3D lifting meets a layer it has no 3D form for).

    Raised while a run executes, it is a ``failed`` run with this message: only pairs known to be
    impossible before anything runs (a strategy that does not lift the backbone's family) are skipped."""


class UndefinedMetricError(Exception):
    """A metric the protocol selects on is undefined (NaN), e.g. validation AUC of a split holding one
    class: the run fails with the reason rather than keeping an untrained model."""


def cannot_write(path: Path | str, flag: str, exc: OSError) -> UsageError:
    """The usage error for an ``OSError`` while writing ``path`` (a read-only folder, a full disk, a file where
    a folder should be), naming the path and the flag that chose it: the user picked the place, and a
    traceback there reads as a bug of ours."""
    return UsageError(f"cannot write {str(path)!r} ({flag}): {exc.strerror or exc}; "
                      "choose a folder that is writable and has space")  # fmt: skip


@contextmanager
def writing(path: Path | str, flag: str) -> Iterator[None]:
    """Run a write of ``path``, turning an ``OSError`` into :func:`cannot_write`'s usage error."""
    try:
        yield
    except OSError as exc:
        raise cannot_write(path, flag, exc) from None


def not_utf8(what: str, exc: UnicodeDecodeError) -> UsageError:
    """The usage error for a TOML file that is not UTF-8, naming the first bad byte."""
    return UsageError(f"{what} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                      "TOML files are UTF-8: save it as UTF-8")  # fmt: skip
