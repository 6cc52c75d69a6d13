"""``liftbench.lifted_features``: features of volumes through a lifted backbone, in one call.

For plugin authors and notebooks: the same path a run takes (the registered backbone and weights, the
backbone's own normalisation, the strategy's defaults), without a results folder or a protocol.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from liftbench.lifting.features import Features


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
    from liftbench.backbones import normalisation
    from liftbench.checks import check_weights
    from liftbench.lifting.api import lift_with
    from liftbench.plugins import default_registry
    from liftbench.protocols.features import forward_batches

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
