"""The layout's import contract (pyproject.toml, ``[tool.importlinter]``) holds, and would catch a break.

import-linter follows every import, at module level or inside a function, and indirect chains too: a lower
layer reaching a higher one through a third module is as broken as a direct import. A layers contract does not
see a circle inside one stage (``study/model.py`` and ``study/toml_file.py`` importing each other); the second
contract (``acyclic_siblings``) does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from repo_root import ROOT

# import-linter's command, run by this interpreter (whatever bin/ folder its script landed in)
LINT = ["-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def _lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``root``, with ``root`` first on the path (so it reads that copy)."""
    env = {"PYTHONPATH": str(root), "HOME": str(root)}
    return subprocess.run([sys.executable, *LINT, "--no-cache", str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "liftbench", tmp_path / "liftbench", ignore=shutil.ignore_patterns("__pycache__", "weights"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_stage_layers_hold():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def test_an_import_against_the_layers_breaks_the_contract(tmp_path):
    """The mutation partner: the operators importing the command line (a cut the layout forbids) is caught,
    through a function-level import as well."""
    root = _copy(tmp_path)
    planes = root / "liftbench" / "lifting" / "planes.py"
    planes.write_text(planes.read_text() + "\n\ndef _sneak():\n    from liftbench.report import leaderboard  # noqa\n")
    out = _lint(root)
    assert out.returncode != 0
    assert "liftbench.lifting is not allowed to import liftbench.report" in out.stdout


def test_a_chain_through_the_package_face_breaks_it_too(tmp_path):
    """A lower layer importing the package root, whose lazy surface reaches the API above it, is a chain."""
    root = _copy(tmp_path)
    options = root / "liftbench" / "plugin" / "options.py"
    options.write_text(options.read_text() + "\n\ndef _sneak():\n    import liftbench  # noqa\n\n    return liftbench\n")
    init = root / "liftbench" / "__init__.py"
    init.write_text(init.read_text() + "\n\ndef _face():\n    from liftbench import api  # noqa\n")
    out = _lint(root)
    assert out.returncode != 0 and "liftbench.plugin is not allowed to import liftbench.api" in out.stdout


def test_a_circle_inside_one_stage_breaks_the_second_contract(tmp_path):
    """The mutation partner: the study model importing the TOML writer back (the circle the layout removed),
    inside a function, where the layers contract sees nothing wrong."""
    root = _copy(tmp_path)
    model = root / "liftbench" / "study" / "model.py"
    model.write_text(model.read_text() + "\n\ndef _sneak():\n    from liftbench.study.toml_file import HEADER  # noqa\n")
    out = _lint(root)
    assert out.returncode != 0 and "1 kept, 1 broken" in out.stdout, out.stdout
    assert "no import circles inside a stage BROKEN" in out.stdout and "No cycles are allowed in liftbench.study." in out.stdout
