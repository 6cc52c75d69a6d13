"""LoRA adapters on a 2D backbone, through peft, attached *before* lifting.

Why before: every ViT lifting, CNN slice-2D and CNN PlaneCycle run the 2D model's own modules on each
plane, so an adapter peft puts on a 2D layer acts on every plane the lifting sends through it, and the
lifted model trains exactly the parameters peft made trainable (a lifting adds none). The count of
trainable parameters is therefore peft's own (``PeftModel.get_nb_trainable_parameters``), which the
protocol checks against what it hands the optimizer.

Where a lifting converts modules instead — CNN ``3d`` (I3D) and ``acs`` — LoRA is refused before the run
(:data:`REFUSED`, a skipped pair in the plan): both convert each ``nn.Conv2d`` by exact type from an
allow-list that refuses unknown layers (so nothing silently runs a 2D op on a 5D tensor), and peft's LoRA
layer replaces the ``Conv2d`` with its own wrapper module. For ACS there is a deeper reason: ACS splits a
conv's *output* channels over the three planes, so the adapter's A conv would have its rank channels split
over planes independently of the base conv's output groups: the update is no longer a low-rank update of
the ACS conv, and merging it into the 2D kernel would change what the model computes.

Targets (option ``lora_targets``): ``auto`` is every ``nn.Linear`` inside the transformer blocks (attention
``qkv``/``proj`` and MLP ``fc1``/``fc2``, or SwiGLU's ``fc1_g``/``fc1_x``/``fc2``) for a ViT, and every
``nn.Conv2d`` for a CNN; else a comma list of layer names (the last part of a module path — ``qkv,proj`` — or the last two where the last is an index: ``downsample.0``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from liftbench.errors import UsageError

if TYPE_CHECKING:
    from torch import nn

#: the ``torch.nn`` layer type LoRA adapts per backbone family (torch imported only when adapting: the
#: built-in plugins import this module's REFUSED and check_targets at registration)
ADAPTED: dict[str, str] = {"vit": "Linear", "cnn": "Conv2d"}
#: (family, strategy) pairs a LoRA protocol refuses before running, with the reason (module docstring)
REFUSED: dict[tuple[str, str], str] = {
    ("cnn", "3d"): "LoRA is not applied to converted modules: the I3D lifting converts each Conv2d by exact type "
    "and refuses peft's LoRA wrapper; adapters act on every plane with 2d or pcg",
    ("cnn", "acs"): "LoRA is not applied to converted modules: ACS splits each conv's output channels over planes, "
    "so an adapter would not be a low-rank update of the ACS conv (nor mergeable); adapters act on every plane "
    "with 2d or pcg",
}  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


def layer_name(path: str) -> str:
    """A layer's name in ``lora_targets``: the last part of its path, with its parent's when that part is an
    index (``downsample.0``)."""
    parts = path.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


def check_targets(value: str) -> str | None:
    """Option check for ``lora_targets``: ``auto`` or a comma list of layer names (reason, or None)."""
    names = [part.strip() for part in str(value).split(",")]
    if value == "auto" or (names and all(_NAME.match(n) for n in names)):
        return None
    return "give auto or a comma list of layer names, e.g. qkv,proj,fc1,fc2"


def adaptable_layers(model: nn.Module, family: str) -> dict[str, str]:
    """Module path -> layer name of every layer LoRA may adapt in ``model`` (in module order)."""
    from torch import nn

    if family not in ADAPTED:
        raise UsageError(f"LoRA adapts ViT or CNN backbones; this backbone's family is {family!r}")
    kind = getattr(nn, ADAPTED[family])
    layers = {}
    for path, module in model.named_modules():
        if type(module) is not kind:
            continue
        if family == "vit" and not path.startswith("blocks."):
            continue  # the patch embedding and any head stay as they are
        layers[path] = layer_name(path)
    return layers


def resolve_targets(model: nn.Module, family: str, targets: str) -> list[str]:
    """The module paths ``targets`` (``auto`` or layer names) selects; a usage error naming the valid names."""
    layers = adaptable_layers(model, family)
    if targets == "auto":
        chosen = list(layers)
    else:
        wanted = [part.strip() for part in targets.split(",") if part.strip()]
        valid = sorted(set(layers.values()))
        for name in wanted:
            if name not in valid:
                raise UsageError(f"option lora_targets: no {ADAPTED[family]} layer named {name!r} in this "
                                 f"backbone; valid: auto, {', '.join(valid)}")  # fmt: skip
        chosen = [path for path, name in layers.items() if name in wanted]
    if not chosen:
        raise UsageError(f"option lora_targets={targets!r}: no layer to adapt in this backbone")
    return chosen


@dataclass
class LoraAttachment:
    """A backbone with LoRA adapters: ``peft_model`` wraps the very module that is lifted (``model``)."""

    peft_model: Any
    model: nn.Module
    rank: int
    alpha: float
    dropout: float
    targets: str
    layers: list[str]

    def trainable_count(self) -> int:
        """peft's count of trainable parameters (the adapters')."""
        return int(self.peft_model.get_nb_trainable_parameters()[0])

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def names(self) -> str:
        """The adapted layer names, in first-seen order (``qkv,proj,fc1,fc2``)."""
        return ",".join(dict.fromkeys(layer_name(path) for path in self.layers))

    def notes(self) -> dict[str, Any]:
        return {
            "lora_rank": self.rank, "lora_alpha": self.alpha, "lora_dropout": self.dropout,
            "lora_targets": self.names(), "lora_layers": len(self.layers),
            "trainable_backbone_parameters": self.trainable_count(),
            "backbone_parameters": int(self.peft_model.get_nb_trainable_parameters()[1]),
        }  # fmt: skip

    @contextmanager
    def merged(self) -> Iterator[None]:
        """The adapters merged into the base weights (peft ``merge_adapter``) inside, unmerged after."""
        self.peft_model.merge_adapter()
        try:
            yield
        finally:
            self.peft_model.unmerge_adapter()


def attach_lora(model: nn.Module, family: str, *, rank: int, alpha: float, dropout: float = 0.0,
                targets: str = "auto") -> LoraAttachment:  # fmt: skip
    """Put LoRA adapters on ``model`` in place (every other parameter frozen) and return the attachment.

    The adapters' A matrices draw from torch's global generator (seed it first), B starts at zero, so the
    adapted model computes what the backbone did until training moves B.
    """
    import peft

    layers = resolve_targets(model, family, targets)
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=layers, bias="none")
    peft_model = peft.get_peft_model(model, config)
    if peft_model.base_model.model is not model:  # pragma: no cover - peft's contract; lifting relies on it
        raise RuntimeError("peft did not adapt the model in place")
    return LoraAttachment(peft_model, model, rank, alpha, dropout, targets, layers)


def lora_refusal(family: str, strategy: str) -> str:
    """Why a LoRA protocol does not run ``strategy`` on a ``family`` backbone ('' = it runs)."""
    return REFUSED.get((family, strategy), "")


def merge_into_weights(attachment: LoraAttachment) -> nn.Module:
    """The backbone with the adapters folded into its weights and peft's layers removed (for inference):
    peft's ``merge_and_unload``; the returned module has the backbone's own structure again."""
    return attachment.peft_model.merge_and_unload()
