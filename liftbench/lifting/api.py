"""``liftbench.lift``: find the strategy, check it can lift this backbone's family, build the module."""

from __future__ import annotations

from typing import Any

from torch import nn

from liftbench.errors import CannotLiftError, UsageError
from liftbench.lifting.base import Lifted
from liftbench.registry import PluginError, Registry


def backbone_family(model: nn.Module) -> str:
    """``"vit"`` for transformer backbones (patch embedding + blocks), ``"cnn"`` for convolutional ones."""
    if hasattr(model, "patch_embed") and hasattr(model, "blocks"):
        return "vit"
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return "cnn"
    raise UsageError(f"cannot tell the family of {type(model).__name__}: it is neither a timm ViT nor a CNN with Conv2d layers")


def lift_with(registry: Registry, model: nn.Module, strategy: str, *, family: str | None = None, **options: Any) -> Lifted:
    """Lift ``model`` with a strategy from ``registry`` (the runner passes its own registry).

    ``family`` is the backbone's registered family (a plugin may add families); without it the model is
    recognised as a timm ``vit`` or a ``cnn``. The lifter must return a :class:`Lifted` (the contract
    in docs/plugins.md); anything else is a :class:`PluginError` naming the plugin and the target.
    """
    if isinstance(model, Lifted):
        model = model.unlift()
    entry = registry.get("strategy", strategy)
    family = family or backbone_family(model)
    if family not in entry.families:
        raise CannotLiftError(
            f"strategy {entry.name!r} cannot lift a {family.upper()} backbone ({type(model).__name__}); "
            f"it lifts: {', '.join(entry.families)}"
        )
    lifter = entry.load(family)
    lifted = lifter(model, **{**entry.defaults, **options})
    if not isinstance(lifted, Lifted):
        raise PluginError(
            f"strategy {entry.name!r} from plugin {entry.origin}: lifter {entry.lifters[family]} returned "
            f"{type(lifted).__name__}, not a liftbench.lifting.Lifted module (see docs/plugins.md, 'What a lifter returns')"
        )
    return lifted


def lift(model: nn.Module, strategy: str, **options: Any) -> Lifted:
    """Public entry point; see :func:`liftbench.lift`."""
    from liftbench.plugins import default_registry

    return lift_with(default_registry(), model, strategy, **options)
