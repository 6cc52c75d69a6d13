"""Built-in protocols: cached linear probe, the paper's augmented probe, fine-tuning, zero-training FeatDice."""

from liftbench import hookimpl


@hookimpl
def liftbench_register_protocols(registrar):
    registrar.add(
        "linear",
        "liftbench.protocols.linear:run",
        aliases=("linear-probe", "probe"),
        description="linear probe on cached frozen features (slice pooling + linear head), AUC/ACC",
    )
    registrar.add(
        "linear-aug",
        "liftbench.protocols.linear_aug:run",
        aliases=("paper-probe",),
        description="the paper's probe: frozen backbone forward every step on augmented volumes (no cache), AUC/ACC",
    )
    registrar.add(
        "finetune",
        "liftbench.protocols.finetune:run",
        aliases=("ft",),
        description="full fine-tuning of backbone + head (lr 5e-5, wd 0.05; bf16, checkpointing, accumulation), AUC/ACC",
    )
    registrar.add(
        "featdice",
        "liftbench.protocols.featdice:run",
        description="zero-training FeatDice: prototype similarity thresholded against lesion masks",
        needs_masks=True,
    )
