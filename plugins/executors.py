"""Built-in executors: run the grid in this process, or on a Slurm cluster through submitit.

The Slurm executor's options are declared here; the command line offers them as ``--slurm-<option>``
(grouped under this plugin in ``liftbench run --help``), and ``liftbench.run.executors.slurm`` validates
their values (time formats, whole numbers) when a grid is submitted.
"""

from liftbench import Option, hookimpl

# The command line runs grids with the local executor unless told otherwise: not to be disabled.
LIFTBENCH_ESSENTIAL = True

SLURM = {
    "partition": Option(str, None, "partition to submit to (default: the cluster's default)"),
    "time": Option(str, None, "time limit per array task: minutes or [D-]HH:MM:SS (default 60)"),
    "gpus": Option(str, None, "GPUs per task (use with --device cuda)"),
    "cpus": Option(str, None, "CPUs per task (also torch's thread count)"),
    "mem": Option(str, None, "memory per task, e.g. 16G"),
    "account": Option(str, None, "account to charge"),
    "qos": Option(str, None, "quality of service"),
    "array_parallelism": Option(str, None, "at most N array tasks at once"),
    "extra": Option(str, None, "any other sbatch option, e.g. constraint=a100 or --exclusive (repeatable)", multiple=True),
    "logs": Option(str, None, "folder for job scripts and logs (default RESULTS/.jobs/logs)"),
}


@hookimpl
def liftbench_register_executors(registrar):
    registrar.add("local", "liftbench.run.executors.local:execute", description="run every run here, in order", in_process=True)
    registrar.add(
        "slurm",
        "liftbench.run.executors.slurm:execute",
        description="submit the grid to Slurm (submitit): one array task per feature-cache group; --slurm-* options",
        options=SLURM,
    )
