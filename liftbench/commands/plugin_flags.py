"""Command-line flags that plugins own: each protocol's and executor's declared options become flags,
grouped under the plugin that declared them in ``liftbench run --help`` (pytest's ``addoption`` idea,
with the declaration at registration so the Python API and study files read the same one).

Protocol options are ``--<option>``: one flag per name, and it sets that option only in the protocols
that declare it *as a flag* (``Option(..., flag=True)``, the default) — never in a protocol that declared
the same name with ``flag=False``, so a plugin's flag cannot silently change a built-in protocol's setting
(:func:`liftbench.commands.run_study._with_flags` applies that rule; ``--opt KEY=VALUE`` still sets every
protocol of the grid that declares KEY). Executor options are ``--<executor>-<option>``. Values stay text
here and are cast by the declaration (:class:`liftbench.plugin.options.Option`) when the grid is planned.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from liftbench.errors import UsageError
from liftbench.plugin.registry import Registry

PROTOCOL_DEST = "protocol_option__"
EXECUTOR_DEST = "executor_option__"


def flag_of(name: str) -> str:
    """The command-line flag of an option name: ``feature_batch`` -> ``--feature-batch``."""
    return "--" + name.replace("_", "-")



def add_plugin_flags(parser: argparse.ArgumentParser, registry: Registry) -> None:
    """Add every declared protocol and executor option to the ``run`` parser, one group per plugin."""
    taken = {opt for action in parser._actions for opt in action.option_strings}
    users: dict[str, list[str]] = defaultdict(list)
    for protocol in registry.entries("protocol"):  # who a flag sets: the protocols declaring it as a flag
        for name, option in protocol.options.items():
            if option.flag:
                users[name].append(f"{protocol.name}: {option.default}" if option.default is not None else protocol.name)
    groups: dict[str, argparse._ArgumentGroup] = {}

    def group(plugin: str, what: str) -> argparse._ArgumentGroup:
        if (plugin, what) not in groups:
            groups[(plugin, what)] = parser.add_argument_group(f"{what} (plugin {plugin})")
        return groups[(plugin, what)]

    for protocol in registry.entries("protocol"):
        for name, option in protocol.options.items():
            flag = flag_of(name)
            if not option.flag or flag in taken:
                continue
            taken.add(flag)
            group(protocol.plugin, "protocol options").add_argument(
                flag, dest=PROTOCOL_DEST + name, metavar=option.type.__name__.upper(),
                help=f"{option.help} (sets it in these protocols, with their defaults: {', '.join(users[name])})",
            )  # fmt: skip
    for executor in registry.entries("executor"):
        for name, option in executor.options.items():
            flag = flag_of(f"{executor.name}_{name}")
            if flag in taken:
                continue
            taken.add(flag)
            group(executor.plugin, f"{executor.name} executor (--executor {executor.name})").add_argument(
                flag, dest=f"{EXECUTOR_DEST}{executor.name}__{name}", metavar=option.type.__name__.upper(),
                action="append" if option.multiple else "store", help=option.help,
            )  # fmt: skip


def protocol_flags(args: argparse.Namespace) -> dict[str, str]:
    """The protocol options given as flags: name -> text."""
    return {key[len(PROTOCOL_DEST) :]: value for key, value in vars(args).items() if key.startswith(PROTOCOL_DEST) and value is not None}


def executor_flags(args: argparse.Namespace, executor: str) -> dict[str, object]:
    """The chosen executor's options given as flags; a flag of another executor is a usage error."""
    given: dict[str, object] = {}
    for key, value in vars(args).items():
        if not key.startswith(EXECUTOR_DEST) or value in (None, []):
            continue
        owner, _, name = key[len(EXECUTOR_DEST) :].partition("__")
        if owner != executor:
            raise UsageError(f"{flag_of(owner + '_' + name)} applies to --executor {owner}, not {executor!r}")
        given[name] = value
    return given
