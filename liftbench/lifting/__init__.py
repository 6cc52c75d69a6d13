"""The lifting operators, as plain torch modules.

Every lifted backbone is a :class:`Lifted` taking ``(B, C, D, H, W)`` and returning :class:`Features`.
One module per idea: ViT slice-2D, flatten-3D (with 3D RoPE) and PlaneCycle; CNN slice-2D, inflated 3D,
ACS and PlaneCycle.
"""

from liftbench.lifting.planes import DEFAULT_SCHEDULE, PLANES, parse_schedule

__all__ = ["DEFAULT_SCHEDULE", "PLANES", "Features", "Lifted", "parse_schedule"]


def __getattr__(name: str):
    """``Lifted`` and ``Features`` import torch: only when asked for, so the registry, ``list``,
    ``status`` and the leaderboard (which need only :mod:`planes`) stay light."""
    if name == "Lifted":
        from liftbench.lifting.base import Lifted

        return Lifted
    if name == "Features":
        from liftbench.lifting.features import Features

        return Features
    raise AttributeError(name)
