"""Shared plumbing of the CNN liftings: patching layers in place, running the trunk, slice features.

Why patch ``forward`` instead of swapping modules: a lifted CNN must keep the 2D model's own module
objects and parameters (fine-tuning trains the pretrained weights, nothing is copied or added) and give
it back untouched. Overriding ``forward`` on the *instance* (``module.forward = partial(fn, module, ...)``)
changes what a layer computes while leaving the module tree, parameter names and ``state_dict`` keys
exactly as they were; :meth:`Patcher.restore` deletes the override and the class's 2D ``forward``
is back. ``nn.Module.__call__`` (hooks included) goes through ``self.forward``, so the override is seen
wherever the model calls the layer. The patch functions are module-level and bound with
:func:`functools.partial`, so a lifted model can still be deep-copied.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

from liftbench.errors import CannotLiftError, UsageError
from liftbench.lifting.features import Features


class Patcher:
    """Overrides ``forward`` on module instances and removes every override again on :meth:`restore`."""

    def __init__(self) -> None:
        self._patched: list[nn.Module] = []

    def patch(self, module: nn.Module, fn: Callable[..., Any], *args: Any) -> None:
        """Make ``module(x)`` compute ``fn(module, *args, x)``."""
        if "forward" in module.__dict__:
            raise UsageError(
                f"{type(module).__name__} is already patched by a lifting; call unlift() on that lifted model first"
            )
        module.forward = partial(fn, module, *args)
        self._patched.append(module)

    def restore(self) -> None:
        """Put every patched module back to its class's own ``forward``."""
        while self._patched:
            module = self._patched.pop()
            module.__dict__.pop("forward", None)

    def __len__(self) -> int:
        return len(self._patched)


def ensure_unpatched(model: nn.Module) -> None:
    """Refuse to lift a model that another (not yet unlifted) CNN lifting still patches."""
    for path, module in model.named_modules():
        if "forward" in module.__dict__:
            where = path or type(model).__name__
            raise UsageError(f"layer {where!r} of this model is patched by another lifting; call unlift() on it first")


def _is_torchvision_resnet_like(model: nn.Module) -> bool:
    names = [name for name, _ in model.named_children()]
    return {"layer4", "avgpool", "fc"} <= set(names) and names.index("avgpool") > names.index("layer4")


def check_trunk(model: nn.Module) -> None:
    """Fail at lift time, with a clear message, if we do not know where the model's features end or they are
    not channels-first maps (timm marks channels-last trunks, Swin's say, with ``output_fmt = 'NHWC'``: their
    ``(N, H, W, C)`` would be read as ``(N, C, H, W)`` without any error)."""
    layout = getattr(model, "output_fmt", None)
    if layout not in (None, "NCHW"):
        raise CannotLiftError(
            f"{type(model).__name__}'s features are {layout}, not the (N, C, H, W) maps the CNN liftings read"
        )
    if callable(getattr(model, "forward_features", None)) or _is_torchvision_resnet_like(model):
        return
    raise CannotLiftError(
        f"cannot find the feature trunk of {type(model).__name__}: lifting a CNN needs timm's forward_features() "
        "or a torchvision ResNet-like model (children ... layer4, avgpool, fc)"
    )


def run_trunk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The last feature map of the 2D model, before global pooling and classifier.

    timm models have ``forward_features``. torchvision ResNets do not: their ``forward`` runs the children
    in registration order (conv1, bn1, relu, maxpool, layer1..4, avgpool, fc), so the trunk is every child
    registered before ``avgpool``.
    """
    forward_features = getattr(model, "forward_features", None)
    if callable(forward_features):
        return forward_features(x)
    if _is_torchvision_resnet_like(model):
        for name, child in model.named_children():
            if name == "avgpool":
                return x
            x = child(x)
    check_trunk(model)
    raise AssertionError("unreachable")  # pragma: no cover


def volumes_to_slices(volumes: torch.Tensor) -> torch.Tensor:
    """``(B, C, D, H, W) -> (B·D, C, H, W)``: every axial slice becomes one 2D image."""
    batch, channels, depth, height, width = volumes.shape
    return volumes.transpose(1, 2).reshape(batch * depth, channels, height, width)


def slice_features(fmap: torch.Tensor, batch: int) -> Features:
    """Features of per-axial-slice feature maps ``(B·d, F, h, w)``.

    ``pooled`` is the global average of each slice's map, ``(B, d, F)``; ``patches`` the maps stacked
    back into a volume, ``(B, F, d, h, w)``.
    """
    stacked = fmap.reshape(batch, fmap.shape[0] // batch, *fmap.shape[1:])
    pooled = stacked.mean(dim=(-2, -1))
    patches = stacked.transpose(1, 2)
    return Features(pooled=pooled, patches=patches)


def volume_features(fmap: torch.Tensor) -> Features:
    """Features of a 3D feature map ``(B, F, d, h, w)``: its global average ``(B, F)`` and the map."""
    return Features(pooled=fmap.mean(dim=(-3, -2, -1)), patches=fmap)
