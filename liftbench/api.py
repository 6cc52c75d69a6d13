"""The Python API: ``liftbench.lift`` and ``liftbench.lifted_features``.

:func:`lift` finds the strategy, checks it can lift this backbone's family and builds the module;
:func:`lifted_features` runs volumes through a registered (or given) backbone the way a run does (the
registered weights, the backbone's own normalisation, the strategy's defaults), without a results folder
or a protocol — for plugin authors and notebooks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from liftbench.datasets.volumes import prepare_batch
from liftbench.errors import CannotLiftError, UsageError
from liftbench.lifting.base import Lifted
from liftbench.lifting.features import Features
from liftbench.plugin.registry import PluginError, Registry
from liftbench.precision import autocast


def backbone_family(model: nn.Module) -> str:
    """``"vit"`` for transformer backbones (patch embedding + blocks), ``"cnn"`` for convolutional ones."""
    if hasattr(model, "patch_embed") and hasattr(model, "blocks"):
        return "vit"
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return "cnn"
    raise UsageError(f"cannot tell the family of {type(model).__name__}: it is neither a timm ViT nor a CNN with Conv2d layers")


def lift_with(registry: Registry, model: nn.Module, strategy: str, *, family: str | None = None, **options: Any) -> Lifted:
    """Lift ``model`` with a strategy from ``registry`` by name (:func:`lift_entry` once it is looked up)."""
    return lift_entry(registry.get("strategy", strategy), model, family=family, **options)


def lift_entry(entry: Any, model: nn.Module, *, family: str | None = None, **options: Any) -> Lifted:
    """Lift ``model`` with a registered strategy's entry (a run passes the one its plan resolved).

    ``family`` is the backbone's registered family (a plugin may add families); without it the model is
    recognised as a timm ``vit`` or a ``cnn``. The lifter must return a :class:`Lifted` (the contract
    in docs/plugins.md); anything else is a :class:`PluginError` naming the plugin and the target.
    """
    if isinstance(model, Lifted):
        model = model.unlift()
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
    from liftbench.plugin.manager import default_registry

    return lift_with(default_registry(), model, strategy, **options)


def lifted_features(
    backbone: str | nn.Module,
    strategy: str,
    volumes: torch.Tensor | np.ndarray,
    *,
    weights: str = "pretrained",
    batch_size: int = 4,
    device: str = "cpu",
    dtype: str = "fp32",
    registry: Any = None,
    **options: Any,
) -> Features:
    """``Features(pooled, patches)`` of ``volumes`` ``(N, C, D, H, W)`` (uint8, or floats in [0, 1]).

    ``backbone`` is a registered name (built with ``weights``: ``pretrained``, ``random[:SEED]`` or a
    file) or a 2D model; ``options`` go to the lifter (``schedule="HW,DW"``). Outputs are float32 on the CPU.
    """
    from liftbench.api import lift_with
    from liftbench.backbones.timm_backbones import normalisation
    from liftbench.checks import check_weights
    from liftbench.plugin.manager import default_registry

    registry = registry or default_registry()
    family = None
    if isinstance(backbone, str):
        entry = registry.get("backbone", backbone)
        model, info = entry.load()(weights, **entry.options)
        check_weights(model, info.source, backbone=entry.name)
        family = entry.family
    else:
        model = check_weights(backbone, "the model passed to lifted_features")
    model = model.eval().to(device)
    mean, std = normalisation(model)
    lifted = lift_with(registry, model, strategy, family=family, **options)
    pooled, patches = [], []
    try:
        with torch.inference_mode():
            for out in forward_batches(lifted, volumes, mean, std, batch_size, device, dtype):
                pooled.append(out.pooled.float().cpu())
                patches.append(out.patches.float().cpu())
    finally:
        lifted.unlift()
    return Features(torch.cat(pooled), torch.cat(patches))


def forward_batches(lifted: Lifted, volumes, mean, std, batch_size: int = 4, device: str = "cpu", dtype: str = "fp32"):
    """The lifted backbone's ``Features`` of ``volumes``, ``batch_size`` at a time: raw volumes normalised
    with the backbone's mean/std, moved to ``device``, run under the requested autocast."""
    for start in range(0, len(volumes), batch_size):
        batch = prepare_batch(volumes[start : start + batch_size], mean, std).to(device)
        with autocast(device, dtype):
            yield lifted(batch)


@torch.inference_mode()
def extract(lifted: Lifted, volumes, mean, std, batch_size: int = 4, device: str = "cpu", dtype: str = "fp32", dense: bool = False):
    """Pooled features (or patch features if ``dense``) of every volume, as float32 on the CPU; a
    ``FloatingPointError`` naming the volumes whose features are not finite (the run fails with it)."""
    from liftbench.checks import check_finite

    out, start = [], 0
    for f in forward_batches(lifted, volumes, mean, std, batch_size, device, dtype):
        batch = (f.patches if dense else f.pooled).float().cpu()
        out.append(check_finite(batch, f"the lifted backbone's output for volumes {start}..{start + len(batch) - 1}"))
        start += len(batch)
    return torch.cat(out)
