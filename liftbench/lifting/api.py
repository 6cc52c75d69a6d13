"""``liftbench.lift``: find the strategy, check it can lift this backbone's family, build the module."""

from __future__ import annotations

from typing import Any

from torch import nn

from liftbench.errors import CannotLiftError, UsageError
from liftbench.lifting.base import Lifted
from liftbench.registry import Registry


def backbone_family(model: nn.Module) -> str:
    """``"vit"`` for transformer backbones (patch embedding + blocks), ``"cnn"`` for convolutional ones."""
    if hasattr(model, "patch_embed") and hasattr(model, "blocks"):
        return "vit"
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return "cnn"
    raise UsageError(f"cannot tell the family of {type(model).__name__}: it is neither a timm ViT nor a CNN with Conv2d layers")


def lift_with(registry: Registry, model: nn.Module, strategy: str, **options: Any) -> Lifted:
    """Lift ``model`` with a strategy from ``registry`` (the runner passes its own registry)."""
    if isinstance(model, Lifted):
        model = model.unlift()
    entry = registry.get("strategy", strategy)
    family = backbone_family(model)
    if family not in entry.families:
        raise CannotLiftError(
            f"strategy {entry.name!r} cannot lift a {family.upper()} backbone ({type(model).__name__}); "
            f"it lifts: {', '.join(entry.families)}"
        )
    lifter = entry.load(family)
    merged = {**entry.meta.get("defaults", {}), **options}
    return lifter(model, **merged)


def lift(model: nn.Module, strategy: str, **options: Any) -> Lifted:
    """Public entry point; see :func:`liftbench.lift`."""
    from liftbench.plugins import default_registry

    return lift_with(default_registry(), model, strategy, **options)
