"""The lifting operators, as plain torch modules.

Every lifted backbone is a :class:`Lifted` taking ``(B, C, D, H, W)`` and returning :class:`Features`.
One module per idea: ViT slice-2D, flatten-3D (with 3D RoPE) and PlaneCycle; CNN slice-2D, inflated 3D,
ACS and PlaneCycle.
"""

from liftbench.lifting.base import Lifted
from liftbench.lifting.features import Features
from liftbench.lifting.planes import DEFAULT_SCHEDULE, PLANES, parse_schedule

__all__ = ["DEFAULT_SCHEDULE", "PLANES", "Features", "Lifted", "parse_schedule"]
