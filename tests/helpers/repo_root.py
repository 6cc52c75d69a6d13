"""Where the checkout's files are, for tests in any folder of ``tests/``.

A test that reads the repository (``results/``, ``docs/``, ``pyproject.toml``, ``benchmarks/``) names it from
here, not from its own ``__file__``: a test's depth in the tree is then free to change. ``tests/helpers/`` is
on ``sys.path`` (``pythonpath`` in pyproject.toml's pytest settings), so ``from repo_root import ROOT`` works
from every folder.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
EXAMPLE_PLUGIN = TESTS / "fixtures" / "liftbench-example-plugin"
