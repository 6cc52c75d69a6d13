"""Built-in executors: run the grid in this process."""

from liftbench import hookimpl


@hookimpl
def liftbench_register_executors(registrar):
    registrar.add("local", "liftbench.executors.local:execute", description="run every run here, in order")
