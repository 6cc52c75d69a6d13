"""``lora`` and ``table2-lora``: the fine-tune protocol with the lifted backbone frozen and LoRA adapters trained.

The paper leaves LoRA on PlaneCycle-lifted models to future work; full fine-tuning is where its cost explodes
(ViT-L PCg: 87 GB, Table 2). This protocol is :func:`liftbench.protocols.finetune.run` — same data, head,
augmentation, schedule, selection and evaluation — with one change: before lifting, peft puts LoRA adapters
on the fresh 2D model (:func:`liftbench.protocols.adapters.attach_lora`) and freezes everything else, so the optimizer
gets the adapters and the head. ``table2-lora`` takes Table 2's released recipe (epochs, ``>=`` selection,
reflect padding, RoPE rescaling) as its defaults, as ``table2-finetune`` does, so a LoRA row sits beside
the paper's fine-tune rows.

Rows record ``lora_rank``, ``lora_alpha``, ``lora_targets``, ``lora_layers`` and peft's trainable count
(``trainable_backbone_parameters``; the run fails if the parameters it trains differ from peft's count).
With ``merge_eval=true`` validation and test forwards run with the adapters merged into the weights.
Pairs where the lifting converts modules (CNN ``3d``, ``acs``) are skipped at planning with the reason
(:data:`liftbench.protocols.adapters.REFUSED`).
"""

from __future__ import annotations

from liftbench.errors import CannotLiftError
from liftbench.protocols import finetune
from liftbench.protocols.adapters import attach_lora, lora_refusal
from liftbench.run.context import ProtocolResult, RunContext


def run(ctx: RunContext) -> ProtocolResult:
    family = ctx.resolved.backbone.family
    strategy = ctx.resolved.strategy.name
    reason = lora_refusal(family, strategy)
    if reason:  # the plan skips these pairs; this guards direct calls
        raise CannotLiftError(f"protocol {ctx.spec.protocol!r} on strategy {strategy!r} ({family}): {reason}")
    options = ctx.options

    def adapt(model):
        return attach_lora(model, family, rank=options["lora_rank"], alpha=options["lora_alpha"],
                           dropout=options["lora_dropout"], targets=options["lora_targets"])  # fmt: skip

    return finetune.run(ctx, adapt=adapt)
