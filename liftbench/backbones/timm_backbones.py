"""Creating backbones with the weights the user asked for, and recording which weights they were.

``weights`` is ``"pretrained"`` (timm's pretrained weights, from the Hugging Face cache or hub),
``"random"`` / ``"random:SEED"`` (explicit random initialisation, seeded: ``random`` is seed 0) or a
local checkpoint path (Meta's original DINOv3 ``.pth`` — timm converts its keys — or a timm
``.pth``/``.safetensors`` file). There is never a silent fallback to random weights: a pretrained
checkpoint that cannot be found is a clear error.

Whatever the source, :func:`state_dict_sha256` fingerprints the tensors the model actually holds, so
two runs share a row group or a feature cache only when their weights are the same numbers.
"""

from __future__ import annotations

import hashlib
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from liftbench.backbones.stream_weights import should_stream, stream_safetensors
from liftbench.errors import MissingFileError, UsageError


def random_seed(weights: str) -> int | None:
    """The seed of ``random`` (0) or ``random:SEED``; None for any other weights string."""
    if weights == "random":
        return 0
    if weights.startswith("random:"):
        text = weights.partition(":")[2]
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"invalid --weights {weights!r}: random weights take an integer seed, e.g. random:3") from None
    return None


@contextmanager
def seeded(seed: int):
    """Build a random model under ``seed`` without disturbing the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 over the model's state dict (names, dtypes, shapes and bytes, in key order): the identity
    of the weights actually used, whatever file or seed they came from."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if tensor.is_meta:  # a model built on the meta device (cost estimates) has no numbers to hash
            return ""
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a model carries: ``source`` is pretrained | random:SEED | the file path;
    ``sha256`` is :func:`state_dict_sha256` of the model as built (the file's own hash is not enough:
    timm converts keys, and a random init has no file)."""

    source: str
    sha256: str = ""

    @property
    def is_random(self) -> bool:
        return self.source.startswith("random")


@lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, computed once per (path, size, mtime) in a process."""
    stat = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime)


def _hub_file(model_name: str) -> str | None:
    """The locally cached checkpoint of a timm model's pretrained weights (HF hub cache), if any."""
    import timm

    cfg = timm.models.get_pretrained_cfg(model_name)
    repo = getattr(cfg, "hf_hub_id", None)
    if not repo:
        return None
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return found
    return None


def _hub_reachable(host: str = "huggingface.co") -> bool:
    """A fast name lookup, so an offline machine fails at once instead of after minutes of retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def _missing_pretrained(model_name: str, reason: str) -> MissingFileError:
    import timm

    cfg = timm.models.get_pretrained_cfg(model_name)
    repo = getattr(cfg, "hf_hub_id", None) or "(no hub id)"
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
    return MissingFileError(
        f"cannot load pretrained weights for {model_name}: {reason}. This machine could not reach the "
        f"Hugging Face hub and the checkpoint is not in the local cache ({cache}). Either download "
        f"'model.safetensors' of https://huggingface.co/{repo} on a machine that is online and copy its hub cache "
        f"(`huggingface-cli download {repo}`, then copy {cache}) here, or pass a local checkpoint with "
        f"--weights PATH (for DINOv3: Meta's original dinov3_*_pretrain_*.pth, or a timm .safetensors file), "
        f"or run with --weights random to measure an untrained architecture on purpose."
    )


def locate_timm_weights(weights: str, *, model_name: str, **_: Any) -> str | None:
    """The locally cached file of timm's pretrained weights for ``model_name`` (the Hugging Face cache), for the
    run key; None where the hub is reachable and will be asked when the run starts; offline with nothing
    cached, the one-paragraph error saying where to put the file — before any run starts."""
    if weights != "pretrained":
        return None
    cached = _hub_file(model_name)
    if cached is None and not _hub_reachable():
        raise _missing_pretrained(model_name, "the hub is unreachable and nothing is cached")
    return cached


def create_timm_backbone(weights: str = "pretrained", *, model_name: str, **kwargs: Any) -> tuple[nn.Module, WeightsInfo]:
    """Build timm model ``model_name`` with the requested weights; returns it and its WeightsInfo."""
    import timm

    seed = random_seed(weights)
    if seed is not None:
        with seeded(seed):
            model = timm.create_model(model_name, pretrained=False, **kwargs)
        return model, WeightsInfo(f"random:{seed}", state_dict_sha256(model))
    if weights == "pretrained":
        cached = _hub_file(model_name)
        if cached is None and not _hub_reachable():
            raise _missing_pretrained(model_name, "the hub is unreachable and nothing is cached")
        if should_stream(model_name, cached, **kwargs):  # a large model: one copy of the weights, not two
            model = stream_safetensors(model_name, cached, **kwargs)
            return model, WeightsInfo("pretrained", state_dict_sha256(model))
        try:
            overlay = {"pretrained_cfg_overlay": {"file": cached}} if cached else {}
            model = timm.create_model(model_name, pretrained=True, **overlay, **kwargs)
        except Exception as exc:  # gated repo, partial download, hub error
            raise _missing_pretrained(model_name, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
        return model, WeightsInfo("pretrained", state_dict_sha256(model))
    path = Path(weights).expanduser()
    if not path.is_file():
        raise MissingFileError(
            f"weights file {str(path)!r} does not exist. --weights takes 'pretrained', 'random' or the path of a "
            f"local checkpoint for {model_name} (Meta's original .pth or a timm .pth/.safetensors file)."
        )
    if should_stream(model_name, path, **kwargs):
        model = stream_safetensors(model_name, path, **kwargs)
        return model, WeightsInfo(str(path), state_dict_sha256(model))
    try:
        model = timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs)
    except Exception as exc:
        raise UsageError(f"cannot load weights file {str(path)!r} into {model_name}: {type(exc).__name__}: {str(exc)[:300]}") from None
    return model, WeightsInfo(str(path), state_dict_sha256(model))


def normalisation(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean/std the 2D model expects its images normalised with (timm's pretrained_cfg)."""
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    mean = tuple(cfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(cfg.get("std", (0.229, 0.224, 0.225)))
    return mean, std
