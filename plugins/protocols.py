"""Built-in protocols: cached linear probe and zero-training FeatDice."""

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
        "featdice",
        "liftbench.protocols.featdice:run",
        description="zero-training FeatDice: prototype similarity thresholded against lesion masks",
        needs_masks=True,
    )
