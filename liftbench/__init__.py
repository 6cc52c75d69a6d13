"""liftbench: how should a pretrained 2D backbone be lifted to 3D volumes?

The Python API is small: :func:`lift` turns a 2D timm/torchvision model into a module that takes
volumes ``(B, C, D, H, W)``; :data:`hookimpl` marks plugin hooks. Everything else is the harness
behind the ``liftbench`` command.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("liftbench")


def __getattr__(name: str):
    # Light names plugins import at registration time, loaded on first use (nothing at import time).
    if name == "Option":
        from liftbench.options import Option

        return Option
    if name == "lifted_features":
        from liftbench.lifting.public import lifted_features

        return lifted_features
    raise AttributeError(f"module 'liftbench' has no attribute {name!r}")


def lift(model, strategy: str, **options):
    """Lift a 2D ``model`` to volumes with ``strategy`` (``2d``, ``3d``, ``acs``, ``pcm``, ``pcg``, ...).

    Returns a :class:`liftbench.lifting.Lifted` module that shares the model's parameters; call
    ``.unlift()`` on it to get the 2D model back. See :mod:`liftbench.lifting` for the options.
    """
    from liftbench.lifting.api import lift as _lift

    return _lift(model, strategy, **options)


__all__ = ["Option", "__version__", "hookimpl", "lift", "lifted_features"]
