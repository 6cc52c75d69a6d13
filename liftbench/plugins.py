"""Building the plugin manager and the registry from the ``liftbench`` entry-point group.

Nothing happens at import time: :func:`build_registry` is called by the CLI (and, once, by
:func:`liftbench.lift`). Built-in plugins are found through the same entry points as third-party
ones. A plugin that fails to import is recorded by name with its error, and the others still load;
two entry points with the same name are reported rather than silently dropped (pluggy's own loader
would skip the second); plugins can be disabled by name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points

import pluggy

from liftbench import hookspecs
from liftbench.registry import KINDS, PLURAL, PluginInfo, Registry

GROUP = "liftbench"
DISABLE_ENV = "LIFTBENCH_DISABLE_PLUGINS"


def disabled_from_env() -> set[str]:
    """Plugin names listed (comma separated) in ``LIFTBENCH_DISABLE_PLUGINS``."""
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def build_plugin_manager(disabled: Iterable[str] = (), extra: Iterable[tuple[str, object]] = ()) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """Load every enabled entry point of the ``liftbench`` group into a new plugin manager.

    ``extra`` registers (name, module-or-object) pairs directly, as tests do for in-process plugins.
    Returns the manager and a :class:`PluginInfo` per plugin seen (loaded, failed or disabled).
    """
    blocked = set(disabled) | disabled_from_env()
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, dist.metadata["Name"] if dist else "", dist.version if dist else "")
        if ep.name in infos:
            first = infos[ep.name]
            info.error = (
                f"entry point name {ep.name!r} is provided by both {first.distribution or '?'} and "
                f"{info.distribution or '?'}; only the first was loaded"
            )
            infos[f"{ep.name} ({info.distribution})"] = info
            continue
        infos[ep.name] = info
        if ep.name in blocked:
            info.error = "disabled"
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"Error importing plugin {ep.name!r}: {type(exc).__name__}: {exc}"
    for name, plugin in extra:
        if name in blocked:
            infos[name] = PluginInfo(name, error="disabled")
            continue
        infos[name] = PluginInfo(name, distribution="(in-process)")
        try:
            pm.register(plugin, name=name)
        except Exception as exc:
            infos[name].error = f"Error registering plugin {name!r}: {type(exc).__name__}: {exc}"
    return pm, infos


def build_registry(disabled: Iterable[str] = (), extra: Iterable[tuple[str, object]] = ()) -> Registry:
    """A registry filled by every enabled plugin's registrar hooks.

    Each hook implementation is called with a registrar bound to its own plugin's name, so a name
    collision can name both plugins.
    """
    pm, infos = build_plugin_manager(disabled, extra)
    registry = Registry()
    registry.plugins = infos
    for kind in KINDS:
        hook = getattr(pm.hook, f"liftbench_register_{PLURAL[kind]}")
        for impl in hook.get_hookimpls():
            plugin_name = pm.get_name(impl.plugin) or str(impl.plugin)
            try:
                impl.function(registrar=registry.registrar(kind, plugin_name))
            except Exception as exc:
                from liftbench.registry import PluginError

                if isinstance(exc, PluginError):
                    raise
                info = infos.setdefault(plugin_name, PluginInfo(plugin_name))
                message = f"plugin {plugin_name!r} failed to register {PLURAL[kind]}: {type(exc).__name__}: {exc}"
                info.error = f"{info.error}; {message}" if info.error else message
    return registry


def warn_plugin_errors(registry: Registry) -> None:
    """Say on stderr which plugins failed to load or register (disabled ones are not news)."""
    for info in registry.plugins.values():
        if info.error and info.error != "disabled":
            print(f"liftbench: warning: {info.error}", file=sys.stderr)


_default: Registry | None = None


def default_registry() -> Registry:
    """The registry of all installed, enabled plugins, built once per process (for the Python API)."""
    global _default
    if _default is None:
        _default = build_registry()
    return _default
