"""Old module paths keep working: every module that moved in the stage layout (0.2), imported under its old
name, is the new module, with a :class:`DeprecationWarning` naming where it lives now.

One table, :data:`MOVED`, as timm keeps one table of deprecated model names. A plugin written against the
0.1 docs (``from liftbench.data import VolumeDataset``, ``from liftbench.protocols.context import RunContext``)
runs unchanged; the warning tells its author the new path — or, better, the stable one: everything a plugin
needs is importable from the package root (``from liftbench import VolumeDataset, RunContext``).
Two old modules became packages of the same name (``liftbench.backbones``, ``liftbench.study``); their old
names are forwarded by the packages themselves (:func:`forward`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

REMOVED_IN = "0.4"

# old module -> new module (a moved package's submodules follow it: liftbench.executors.slurm too)
MOVED = {
    "liftbench.plugins": "liftbench.plugin.manager",
    "liftbench.hookspecs": "liftbench.plugin.hookspecs",
    "liftbench.registry": "liftbench.plugin.registry",
    "liftbench.entries": "liftbench.plugin.entries",
    "liftbench.options": "liftbench.plugin.options",
    "liftbench.study_toml": "liftbench.study.toml_file",
    "liftbench.study_plan": "liftbench.study.plan",
    "liftbench.runner": "liftbench.run.runner",
    "liftbench.results": "liftbench.run.results",
    "liftbench.provenance": "liftbench.run.provenance",
    "liftbench.memory": "liftbench.run.memory",
    "liftbench.inputs": "liftbench.run.inputs",
    "liftbench.executors": "liftbench.run.executors",
    "liftbench.protocols.context": "liftbench.run.context",
    "liftbench.protocols.features": "liftbench.run.feature_cache",
    "liftbench.leaderboard": "liftbench.report.leaderboard",
    "liftbench.leaderboard_format": "liftbench.report.formats",
    "liftbench.plots": "liftbench.report.plots",
    "liftbench.plots_pvalues": "liftbench.report.plots_pvalues",
    "liftbench.figure1": "liftbench.report.figure1",
    "liftbench.paired": "liftbench.report.paired",
    "liftbench.chance": "liftbench.report.chance",
    "liftbench.reported": "liftbench.report.reported",
    "liftbench.site": "liftbench.report.site",
    "liftbench.estimate": "liftbench.cost.estimate",
    "liftbench.estimate_seg": "liftbench.cost.estimate_seg",
    "liftbench.estimate_memory": "liftbench.cost.estimate_memory",
    "liftbench.bench": "liftbench.cost.bench",
    "liftbench.stream_weights": "liftbench.backbones.stream_weights",
    "liftbench.shapes": "liftbench.backbones.shapes",
    "liftbench.adapters": "liftbench.protocols.adapters",
    "liftbench.data": "liftbench.datasets.volumes",
    "liftbench.lifting.api": "liftbench.api",
    "liftbench.lifting.public": "liftbench.api",
    "liftbench_plugins.medmnist3d": "liftbench.datasets.medmnist3d",
    "liftbench_plugins.lidc": "liftbench.datasets.lidc",
    "liftbench_plugins.mmwhs": "liftbench.datasets.mmwhs",
    "liftbench_plugins.mmwhs_augment": "liftbench.datasets.mmwhs_augment",
    "liftbench_plugins.synthetic": "liftbench.datasets.synthetic",
    "liftbench_plugins.diagnostic": "liftbench.datasets.diagnostic",
    "liftbench_plugins.data_folder": "liftbench.datasets.data_folder",
    "liftbench_plugins.slice_augment": "liftbench.datasets.slice_augment",
}


def new_name(old: str) -> str | None:
    """Where the module once imported as ``old`` lives now (None: it did not move)."""
    for prefix, target in MOVED.items():
        if old == prefix or old.startswith(prefix + "."):
            return target + old[len(prefix) :]
    return None


def _outside_importlib() -> int:
    """The stack level of the first frame outside the import machinery: the line that imported the old path."""
    frame, level = sys._getframe(1), 1
    while frame is not None and ("importlib" in frame.f_code.co_filename or frame.f_code.co_filename == __file__):
        frame, level = frame.f_back, level + 1
    return level


def warn_moved(old: str, new: str) -> None:
    warnings.warn(
        f"{old} moved to {new}; import it from there, or from the package root (from liftbench import ...). "
        f"The old path works until liftbench {REMOVED_IN}.",
        DeprecationWarning,
        stacklevel=_outside_importlib(),
    )


class _Alias(importlib.abc.Loader):
    """Loads an old name as the new module itself (one module object: ``isinstance`` and patches agree)."""

    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        warn_moved(spec.name, self.new)
        return importlib.import_module(self.new)

    def exec_module(self, module) -> None:
        pass


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds old module paths (only those in :data:`MOVED`; every other import passes through untouched)."""

    def find_spec(self, fullname, path=None, target=None):
        new = new_name(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedFinder())


def forward(package: str, module: str, name: str):
    """A package's ``__getattr__`` for the names of the old module it replaced (``liftbench.backbones``)."""
    mod = importlib.import_module(module)
    if not hasattr(mod, name) or name.startswith("__"):
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    warn_moved(f"{package}.{name}", f"{module}.{name}")
    return getattr(mod, name)
