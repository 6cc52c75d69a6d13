"""Loading a large model's weights without a second copy: build on the meta device, assign the file's tensors.

What timm does (1.0.x): ``create_model(..., pretrained=True)`` first builds and initialises the model in float32
(27 GB for DINOv3-7B), then ``safetensors.torch.load_file`` reads the whole checkpoint into a second state dict and
``load_state_dict`` copies it in — two full copies at the peak, and a float32 one even for a bf16 file. Here, for
models of at least ``STREAM_MIN_PARAMETERS`` and ``.safetensors`` files (timm-format keys: the hub's
``model.safetensors`` or a timm export), the model is built on ``meta`` (no storage), the file is opened
memory-mapped (``safetensors.safe_open``) and each tensor, read once, *becomes* the parameter
(``load_state_dict(assign=True)``), in the file's dtype; non-persistent buffers (RoPE periods) are then
allocated and computed by timm's ``init_non_persistent_buffers``. The peak is one copy of the weights.
A ``.pth`` (pickle) cannot be read tensor by tensor without loading it; those go through timm as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from liftbench.errors import UsageError

STREAM_MIN_PARAMETERS = 1_000_000_000


def meta_parameter_count(model_name: str, **kwargs: Any) -> int:
    import timm

    with torch.device("meta"):
        model = timm.create_model(model_name, pretrained=False, **kwargs)
    return sum(p.numel() for p in model.parameters())


def should_stream(model_name: str, path: str | Path | None, minimum: int = STREAM_MIN_PARAMETERS, **kwargs: Any) -> bool:
    """Whether ``path`` is a safetensors file and the model large enough to load it by :func:`stream_safetensors`."""
    return path is not None and str(path).endswith(".safetensors") and meta_parameter_count(model_name, **kwargs) >= minimum


def materialise_buffers(model: nn.Module) -> None:
    """Give every buffer still on ``meta`` CPU storage and compute timm's non-persistent ones."""
    for module in model.modules():
        for name, buffer in list(module._buffers.items()):
            if buffer is not None and buffer.is_meta:
                module._buffers[name] = torch.empty_like(buffer, device="cpu")
    for module in model.modules():
        if hasattr(module, "init_non_persistent_buffers"):
            module.init_non_persistent_buffers()
    left = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise UsageError(f"the checkpoint leaves {len(left)} tensor(s) without values, e.g. {left[0]!r}")


def stream_safetensors(model_name: str, path: str | Path, **kwargs: Any) -> nn.Module:
    """timm model ``model_name`` holding the tensors of ``path`` (module docstring), in eval mode."""
    import timm
    from safetensors import safe_open

    with torch.device("meta"):
        model = timm.create_model(model_name, pretrained=False, **kwargs)
    expected = set(model.state_dict())
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        keys = set(handle.keys())
        if keys != expected:
            missing, unexpected = sorted(expected - keys), sorted(keys - expected)
            raise UsageError(f"cannot stream {str(path)!r} into {model_name}: {len(missing)} missing key(s) "
                             f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]} (timm-format keys needed; "
                             "Meta's original .pth goes through timm's converter)")  # fmt: skip
        state = {key: handle.get_tensor(key) for key in keys}
    model.load_state_dict(state, strict=True, assign=True)
    del state
    materialise_buffers(model)
    return model.eval()
