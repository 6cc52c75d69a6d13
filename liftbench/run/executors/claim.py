"""Claiming a run in a results folder, so two local commands on one grid never compute a run twice.

A claim is an exclusive, non-blocking ``flock`` on ``RESULTS/.locks/<run_key>.lock``, held while the run is
computed and written. A second command that finds a run claimed leaves it to the first (it will write the
result) and moves on; a command that gets the claim first looks again at the result file, since another one
may have finished the run since the plan was made. The kernel drops the lock when its process dies, so a killed
command leaves nothing to clean up (the empty lock files stay; they cost nothing and removing them would race).
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCKS_DIR = ".locks"


@contextmanager
def claimed(results_dir: Path, run_key: str) -> Iterator[bool]:
    """Yields True while this process holds the run's claim, False if another process holds it."""
    folder = Path(results_dir) / LOCKS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{run_key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
