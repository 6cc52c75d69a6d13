"""Creating the shapes backbones with the weights asked for: the shipped file, a seeded random init or a
local checkpoint (the backbone-creator contract of :mod:`liftbench.backbones.timm_backbones`).

``pretrained`` loads ``liftbench/backbones/shapes/weights/<name>.safetensors`` after checking its sha256
against :data:`EXPECTED_SHA256`; a missing or different file is a :class:`MissingFileError` (never a
silent fallback to random weights). ``random`` / ``random:SEED`` is the architecture's own init under
that seed — seed 0 is the init the shipped weights were trained from. Any other string is a file path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from liftbench.backbones.shapes.models import ARCHITECTURES
from liftbench.backbones.timm_backbones import WeightsInfo, file_sha256, random_seed, seeded, state_dict_sha256
from liftbench.errors import MissingFileError, UsageError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
REGENERATE = "python -m liftbench.backbones.shapes.train --model {name}"

# sha256 of the shipped weight files; `python -m liftbench.backbones.shapes.train` rewrites these lines.
EXPECTED_SHA256 = {
    "vit-tiny-shapes": "6c2cc379d4e204107465407fd033f9026a0f0135172f911e78099e002b301ac8",
    "resnet-tiny-shapes": "e093427e0d0bd99f28f6e360447572ce01cba1b633f575bcff14591fd17ff9d2",
    "convnext-tiny-shapes": "3b94f8ba76f292f61f4e7b580c185a99cc00634cca0bde20854e9bc6c2635514",
}


def weights_path(name: str) -> Path:
    """Where the shipped weights of ``name`` live."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def _architecture(name: str) -> nn.Module:
    if name not in ARCHITECTURES:
        raise UsageError(f"unknown shapes backbone {name!r}; valid: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UsageError(f"weights file {str(path)!r} holds a {type(state).__name__}, not a state dict")
    return state


def _load_into(model: nn.Module, path: Path, name: str) -> None:
    try:
        state = _read_state_dict(path)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(
            f"cannot read weights file {str(path)!r} for {name}: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
                parts.append(f"{len(keys)} {label} key(s): {shown}")
        raise UsageError(f"weights file {str(path)!r} does not fit the {name} architecture: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)


def _check_shipped(name: str, path: Path) -> None:
    command = REGENERATE.format(name=name)
    if not path.is_file():
        raise MissingFileError(
            f"the pretrained weights of {name} are missing: expected the file {path.name} in {path.parent} "
            f"(shipped with liftbench). Reinstall liftbench, or regenerate the file on CPU in a few minutes with "
            f"`{command}`, or run with --weights random to measure the untrained architecture on purpose."
        )
    expected = EXPECTED_SHA256.get(name, "")
    actual = file_sha256(path)
    if actual != expected:
        raise MissingFileError(
            f"the pretrained weights file of {name} ({path}) is not the one this liftbench expects: its sha256 is "
            f"{actual}, expected {expected or '(none recorded)'}. The file is corrupted or from another training run. "
            f"Regenerate it with `{command}` (which also records its new sha256 in liftbench/backbones/shapes/load.py), "
            f"or pass the file explicitly with --weights {path} to use it as it is."
        )


def locate(weights: str, *, model_name: str, **_: Any) -> Path | None:
    """The shipped file ``pretrained`` loads (checked as :func:`create` checks it), for the run key."""
    if weights != "pretrained":
        return None
    path = weights_path(model_name)
    _check_shipped(model_name, path)
    return path


def create(weights: str = "pretrained", *, model_name: str, **options: Any) -> tuple[nn.Module, WeightsInfo]:
    """Build shapes backbone ``model_name`` with ``weights``; returns it in eval mode and its WeightsInfo."""
    if options:
        raise UsageError(f"backbone {model_name!r} takes no options; got {', '.join(sorted(options))}")
    seed = random_seed(weights)
    if seed is not None:
        with seeded(seed):
            model = _architecture(model_name)
        return model.eval(), WeightsInfo(f"random:{seed}", state_dict_sha256(model))
    if weights == "pretrained":
        path = weights_path(model_name)
        model = _architecture(model_name)
        _check_shipped(model_name, path)
        _load_into(model, path, model_name)
        return model.eval(), WeightsInfo("pretrained", state_dict_sha256(model))
    path = Path(weights).expanduser()
    model = _architecture(model_name)
    if not path.is_file():
        raise MissingFileError(
            f"weights file {str(path)!r} does not exist. --weights takes 'pretrained', 'random', 'random:SEED' or the "
            f"path of a .safetensors/.pth state dict of {model_name} (e.g. one written by `{REGENERATE.format(name=model_name)} --out DIR`)."
        )
    _load_into(model, path, model_name)
    return model.eval(), WeightsInfo(str(path), state_dict_sha256(model))
