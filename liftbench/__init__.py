"""liftbench: how should a pretrained 2D backbone be lifted to 3D volumes?

The package root is the one stable surface: :func:`lift` turns a 2D timm/torchvision model into a module
that takes volumes ``(B, C, D, H, W)``, :func:`lifted_features` runs volumes through a registered backbone,
and everything a plugin needs is importable from here (docs/reference/plugin-surface.md)::

    from liftbench import VolumeDataset, VolumeSplit, Lifted, Features, RunContext, ProtocolResult, Option, hookimpl

Names are loaded on first use, so ``import liftbench`` stays light (no torch). Modules that moved keep
working under their old paths with a DeprecationWarning (:mod:`liftbench.moved`).
"""

from __future__ import annotations

import importlib

import pluggy

from liftbench import moved
from liftbench.version import __version__

hookimpl = pluggy.HookimplMarker("liftbench")

moved.install()

# name -> the module that defines it (each is documented in the API reference)
SURFACE = {
    "lifted_features": "liftbench.api",
    "Option": "liftbench.plugin.options",
    "VolumeDataset": "liftbench.datasets.volumes",
    "VolumeSplit": "liftbench.datasets.volumes",
    "Lifted": "liftbench.lifting.base",
    "check_options": "liftbench.lifting.base",
    "Features": "liftbench.lifting.features",
    "RunContext": "liftbench.run.context",
    "ProtocolResult": "liftbench.run.context",
    "classification_metrics": "liftbench.metrics",
    "UsageError": "liftbench.errors",
    "PluginError": "liftbench.errors",
    "MissingFileError": "liftbench.errors",
    "CannotLiftError": "liftbench.errors",
    "UndefinedMetricError": "liftbench.errors",
    "DatasetContractError": "liftbench.datasets.volumes",
}


def __getattr__(name: str):
    if name in SURFACE:
        return getattr(importlib.import_module(SURFACE[name]), name)
    raise AttributeError(f"module 'liftbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *SURFACE])


def lift(model, strategy: str, **options):
    """Lift a 2D ``model`` to volumes with ``strategy`` (``2d``, ``3d``, ``acs``, ``pcm``, ``pcg``, ...).

    Returns a :class:`liftbench.Lifted` module that shares the model's parameters; call ``.unlift()`` on it
    to get the 2D model back. See docs/strategies.md for what each strategy computes, and its options.
    """
    from liftbench.api import lift as _lift

    return _lift(model, strategy, **options)


__all__ = ["__version__", "hookimpl", "lift", *SURFACE]
