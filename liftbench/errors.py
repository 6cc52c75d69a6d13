"""Errors that mean "the user asked for something wrong", kept apart from bugs.

The CLI turns a :class:`UsageError` into a one-paragraph message and exit status 2, with no
traceback; every other exception is a defect (or a failed run, recorded as such by the runner).
"""

from __future__ import annotations

from enum import IntEnum


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
