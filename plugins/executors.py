"""Built-in executors: run the grid in this process, or on a Slurm cluster through submitit."""

from liftbench import hookimpl


@hookimpl
def liftbench_register_executors(registrar):
    registrar.add("local", "liftbench.executors.local:execute", description="run every run here, in order")
    registrar.add(
        "slurm",
        "liftbench.executors.slurm:execute",
        description="submit the grid to Slurm (submitit): one array task per feature-cache group; --slurm-* options",
    )
