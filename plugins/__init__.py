"""liftbench's built-in plugins — and the guide to writing your own.

Each module here is one plugin, registered through the ``liftbench`` entry-point group in
liftbench's own ``pyproject.toml``, exactly as a third-party package registers its plugins::

    [project.entry-points.liftbench]
    my-strategies = "my_package.strategies"

A plugin module implements one or more registrar hooks (see :mod:`liftbench.plugin.hookspecs`)::

    from liftbench import hookimpl

    @hookimpl
    def liftbench_register_strategies(registrar):
        registrar.add("mine", lifters={"vit": "my_package.lifting:MyLifted"},
                      description="my way to lift a ViT")

Registrations name implementations as ``"module:attr"`` strings, so nothing heavy is imported until
a run selects the thing. Names must be unique across plugins: a collision is an error naming both.
"""

# The built-in plugins by entry-point name, as pyproject.toml registers them. liftbench reads this list
# only when no installed metadata lists them (a plain source checkout), so the command still works.
import liftbench  # noqa: E402,F401  (installs the finder that keeps the moved loaders' old module paths working)

BUILTINS = {
    "builtin-strategies": "liftbench_plugins.strategies",
    "builtin-backbones": "liftbench_plugins.backbones",
    "builtin-shapes-backbones": "liftbench_plugins.shapes_backbones",
    "builtin-datasets": "liftbench_plugins.datasets",
    "builtin-protocols": "liftbench_plugins.protocols",
    "builtin-executors": "liftbench_plugins.executors",
    "builtin-studies": "liftbench_plugins.studies",
}
