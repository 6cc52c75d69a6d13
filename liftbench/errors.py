"""Errors that mean "the user asked for something wrong", kept apart from bugs.

The CLI turns a :class:`UsageError` into a one-paragraph message and exit status 2, with no
traceback; every other exception is a defect (or a failed run, recorded as such by the runner).
"""

from __future__ import annotations


class UsageError(Exception):
    """A user mistake: an unknown name, a bad option value, a missing file. Exit status 2."""

    exit_status = 2


class MissingFileError(UsageError):
    """A weight or data file the run needs is not on disk and cannot be downloaded."""


class CannotLiftError(Exception):
    """A strategy cannot lift this backbone (e.g. ACS on a ViT): the run is skipped, not failed."""
