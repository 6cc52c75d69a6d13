"""The common shape of every lifted backbone.

A :class:`Lifted` module holds the original 2D model as ``.model`` — the same object, so its
parameters are the pretrained ones and fine-tuning the lifted module trains them — and adds no
parameters of its own. ``unlift()`` hands the 2D model back (restoring any layer it patched), so a
model can be lifted again with another strategy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from liftbench.errors import PluginError, UsageError
from liftbench.lifting.features import Features


def expected_channels(model: nn.Module) -> int:
    """Input channels the 2D model expects: those of its first convolution (3 for RGB backbones)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 3


def check_options(strategy: str, options: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Reject options a strategy does not understand, naming the bad one and the valid ones."""
    allowed = tuple(allowed)
    for key in options:
        if key not in allowed:
            valid = ", ".join(allowed) or "(none)"
            raise UsageError(f"strategy {strategy!r} has no option {key!r}; valid options: {valid}")


class Lifted(nn.Module):
    """Base class: ``forward(volumes (B, C, D, H, W)) -> Features``."""

    strategy: str = ""
    #: block indices whose normed patch maps ``forward`` also returns in ``Features.layers`` (ViT lifters
    #: honour it; see :mod:`liftbench.segmentation.dense`). Empty: only the last map, as ``patches``.
    collect: tuple[int, ...] = ()

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.in_chans = expected_channels(model)

    def describe(self) -> dict[str, str]:
        """What defines this lifting in a result row: strategy, schedule and pooling ('' if n/a)."""
        return {"strategy": self.strategy, "schedule": "", "pooling": ""}

    def unlift(self) -> nn.Module:
        """Return the 2D model, as it was before lifting."""
        return self.model

    def match_channels(self, volumes: torch.Tensor) -> torch.Tensor:
        """Repeat a single-channel volume to the channels the 2D model expects (a view, no copy)."""
        if volumes.dim() != 5:
            raise ValueError(f"expected volumes of shape (B, C, D, H, W), got {tuple(volumes.shape)}")
        channels = volumes.shape[1]
        if channels == self.in_chans:
            return volumes
        if channels == 1:
            return volumes.expand(-1, self.in_chans, -1, -1, -1)
        raise ValueError(f"volumes have {channels} channels; the backbone expects {self.in_chans} (or 1, repeated)")

    def forward(self, volumes: torch.Tensor) -> Features:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Features:
        """Run ``forward`` and hold it to the contract every protocol relies on: a :class:`Features`."""
        out = super().__call__(*args, **kwargs)
        if not isinstance(out, Features):
            cls = type(self)
            raise PluginError(
                f"lifter {cls.__module__}.{cls.__qualname__} (strategy {self.strategy or '?'}) returned "
                f"{type(out).__name__}; a lifted backbone's forward must return "
                "liftbench.lifting.features.Features(pooled, patches) (see docs/plugins.md, 'What a lifter returns')"
            )
        return out
