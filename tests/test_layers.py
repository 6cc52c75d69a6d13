"""The layout's import contract (pyproject.toml, ``[tool.importlinter]``) holds, and would catch a break.

import-linter follows every import, at module level or inside a function, and indirect chains too: a lower
layer reaching a higher one through a third module is as broken as a direct import. A layers contract does not
see a circle inside one stage (``study/model.py`` and ``study/toml_file.py`` importing each other), so the
module graph import-linter builds (grimp's) is also checked for circles.
"""

from __future__ import annotations

import json
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
    return subprocess.run([sys.executable, *LINT, "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


# The circles of liftbench's module graph: Tarjan's strongly connected components of more than one module.
CYCLES = """
import json, sys
import grimp
sys.setrecursionlimit(10_000)
graph = grimp.build_graph("liftbench")
index, low, stack, on, found = {}, {}, [], set(), []
def visit(module):
    index[module] = low[module] = len(index)
    stack.append(module)
    on.add(module)
    for other in graph.find_modules_directly_imported_by(module):
        if other not in index:
            visit(other)
            low[module] = min(low[module], low[other])
        elif other in on:
            low[module] = min(low[module], index[other])
    if low[module] == index[module]:
        component = []
        while not component or component[-1] != module:
            component.append(stack.pop())
            on.discard(component[-1])
        if len(component) > 1:
            found.append(sorted(component))
for module in sorted(graph.modules):
    if module not in index:
        visit(module)
print(json.dumps(found))
"""


def _cycles(root: Path) -> list[list[str]]:
    """Every import circle of the package under ``root`` (function-level imports included, as grimp reads them)."""
    out = subprocess.run([sys.executable, "-c", CYCLES], cwd=root, env={"PYTHONPATH": str(root), "HOME": str(root)},
                         capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    return json.loads(out.stdout)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "liftbench", tmp_path / "liftbench", ignore=shutil.ignore_patterns("__pycache__", "weights"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_stage_layers_hold():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout


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


def test_no_module_imports_itself_through_a_circle():
    assert _cycles(ROOT) == []


def test_a_circle_inside_one_stage_is_found(tmp_path):
    """The mutation partner: the study model importing the TOML writer back (the circle the layout removed),
    inside a function, where the layers contract sees nothing wrong."""
    root = _copy(tmp_path)
    model = root / "liftbench" / "study" / "model.py"
    model.write_text(model.read_text() + "\n\ndef _sneak():\n    from liftbench.study.toml_file import HEADER  # noqa\n")
    assert _cycles(root) == [["liftbench.study.model", "liftbench.study.toml_file"]]
    assert _lint(root).returncode == 0  # the layers contract alone passes it
