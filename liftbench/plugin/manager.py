"""Building the plugin manager and the registry from the ``liftbench`` entry-point group.

Nothing happens at import time: :func:`build_registry` is called by the CLI (and, once, by
:func:`liftbench.lift`). Built-in plugins are found through the same entry points as third-party
ones; in a plain source checkout without installed metadata they are loaded from the package's own
list (``liftbench_plugins.BUILTINS``) so the command still works. pluggy is used as designed:

- hooks are called through ``pm.hook.<name>(...)``, so hook wrappers, tracing and call monitoring see
  every call; a hook that raises is reported by plugin name and the remaining plugins are called;
- ``pm.check_pending()`` runs after loading: a hook implementation whose name matches no hook (a
  typo such as ``liftbench_register_strategy``) is reported by name with the closest real hook, and
  that plugin is not loaded;
- two entry points with the same name are reported (pluggy's loader would drop the second silently);
- a plugin can be disabled by name, except one that marks itself ``LIFTBENCH_ESSENTIAL = True`` (the
  CLI cannot work without it); asking to disable a plugin that does not exist is reported.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from liftbench.errors import UsageError
from liftbench.names import did_you_mean
from liftbench.plugin import hookspecs
from liftbench.plugin.registry import KINDS, PLURAL, PluginError, PluginInfo, Registry

GROUP = "liftbench"
DISABLE_ENV = "LIFTBENCH_DISABLE_PLUGINS"
BUILTIN_PACKAGE = "liftbench_plugins"


def disabled_from_env() -> set[str]:
    """Plugin names listed (comma separated) in ``LIFTBENCH_DISABLE_PLUGINS``."""
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def _builtin_package():
    """The built-in plugins' package: installed as ``liftbench_plugins``, or the checkout's ``plugins/``."""
    try:
        return importlib.import_module(BUILTIN_PACKAGE)
    except ImportError:
        folder = Path(__file__).resolve().parents[2] / "plugins"
        spec = importlib.util.spec_from_file_location(BUILTIN_PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)])
        if spec is None or not (folder / "__init__.py").is_file():
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[BUILTIN_PACKAGE] = module
        spec.loader.exec_module(module)
        return module


def _candidates(extra: Iterable[tuple[str, object]]) -> list[tuple[str, PluginInfo, object]]:
    """(name, info, load) for every entry point, built-in fallback and in-process plugin; ``load()``
    imports the plugin (an entry point's module) or hands back an in-process plugin object."""
    found: list[tuple[str, PluginInfo, object]] = []
    seen: dict[str, PluginInfo] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, dist.metadata["Name"] if dist else "", dist.version if dist else "")
        if ep.name in seen:
            info.error = (f"entry point name {ep.name!r} is provided by both {seen[ep.name].distribution or '?'} and "
                          f"{info.distribution or '?'}; only the first was loaded")  # fmt: skip
            found.append((f"{ep.name} ({info.distribution})", info, lambda: None))
            continue
        seen[ep.name] = info
        found.append((ep.name, info, ep.load))
    if not any(info.distribution == "liftbench" for info in seen.values()):  # no installed metadata
        package = _builtin_package()
        from liftbench.version import __version__

        for name, module in getattr(package, "BUILTINS", {}).items():
            if name not in seen:
                info = PluginInfo(name, "liftbench", __version__)
                found.append((name, info, lambda module=module: importlib.import_module(module)))
    for name, plugin in extra:
        found.append((name, PluginInfo(name, distribution="in-process"), lambda plugin=plugin: plugin))
    return found


def build_plugin_manager(disabled: Iterable[str] = (), extra: Iterable[tuple[str, object]] = ()) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """Load every enabled plugin into a new plugin manager.

    ``disabled`` names plugins not to load (an unknown name is a :class:`UsageError` with the closest
    one; names from ``LIFTBENCH_DISABLE_PLUGINS`` that match nothing are only warned about). ``extra``
    registers (name, module-or-object) pairs directly, as tests do for in-process plugins. Returns
    the manager and a :class:`PluginInfo` per plugin seen (loaded, failed or disabled).
    """
    asked, from_env = set(disabled), disabled_from_env()
    blocked = asked | from_env
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    for name, info, load in _candidates(extra):
        infos[name] = info
        if info.error:
            continue
        try:
            plugin = load()
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"Error importing plugin {name!r}: {type(exc).__name__}: {exc}"
            continue
        if name in blocked:
            if getattr(plugin, "LIFTBENCH_ESSENTIAL", False):
                raise UsageError(f"plugin {name!r} cannot be disabled: liftbench cannot run without it ({(plugin.__doc__ or '').strip().splitlines()[0]})")
            info.error = "disabled"
            continue
        try:
            pm.register(plugin, name=name)
        except Exception as exc:
            info.error = f"Error registering plugin {name!r}: {type(exc).__name__}: {exc}"
    _reject_unknown_hooks(pm, infos)
    for name in sorted(blocked - set(infos)):
        hint = did_you_mean(name, infos, ordered=True, otherwise="")
        message = f"cannot disable plugin {name!r}: no such plugin{hint} installed plugins: {', '.join(infos)}"
        if name in asked:
            raise UsageError(message)
        print(f"liftbench: warning: {message} (from {DISABLE_ENV})", file=sys.stderr)
    return pm, infos


def _reject_unknown_hooks(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
    """``pm.check_pending()`` until it passes: each plugin with a misspelt hook is reported and unloaded."""
    hooks = [name for name in dir(hookspecs) if name.startswith("liftbench_")]
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or str(exc.plugin)
            unknown = [n for n in dir(exc.plugin) if n.startswith("liftbench_") and n not in hooks]
            hint = did_you_mean(unknown[0] if unknown else "", hooks, ordered=True, otherwise=f"; hooks: {', '.join(hooks)}")
            what = repr(unknown[0]) if unknown else "a hook"
            infos.setdefault(name, PluginInfo(name)).error = f"plugin {name!r} implements unknown hook {what}{hint} (plugin not loaded)"
            pm.unregister(exc.plugin)


def _call_isolated(pm: pluggy.PluginManager, hook_name: str, infos: dict[str, PluginInfo], registry: Registry, kind: str) -> None:
    """Call one registrar hook plugin by plugin, each through its own hook caller (pluggy's
    ``subset_hook_caller``) with a registrar that knows which plugin it serves, so every entry records its
    plugin and a plugin whose implementation raises is reported by name while the others still register."""
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    plugins = {impl.plugin_name: impl.plugin for impl in impls}
    for name in reversed(list(plugins)):  # pluggy's own order: the last registered plugin first
        others = [plugin for other, plugin in plugins.items() if other != name]
        caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
        try:
            caller(registrar=registry.registrar(kind, name))
        except Exception as exc:
            if isinstance(exc, PluginError) and registry.collisions is None:
                raise  # malformed or colliding: every command stops, except `liftbench list plugins`
            info = infos.setdefault(name, PluginInfo(name))
            message = f"plugin {name!r} failed to register {PLURAL[kind]}: {type(exc).__name__}: {exc}"
            info.error = f"{info.error}; {message}" if info.error else message


def build_registry(disabled: Iterable[str] = (), extra: Iterable[tuple[str, object]] = (), *,
                   report: bool = False) -> Registry:  # fmt: skip
    """A registry filled by every enabled plugin's registrar hooks, called through the plugin manager.

    Each entry records the plugin that registered it (and that plugin's distribution and version), so
    a name collision can name both plugins and every result row its providers. A collision (or a malformed
    registration) is a :class:`PluginError`; with ``report`` (``liftbench list plugins``, the command that
    must show it) it is recorded on the plugin instead — in ``registry.collisions`` too — and the entry left
    out, so the listing still works.
    """
    pm, infos = build_plugin_manager(disabled, extra)
    registry = Registry()
    registry.plugins = infos
    registry.collisions = [] if report else None
    registry.plugin_manager = pm
    for kind in KINDS:
        _call_isolated(pm, f"liftbench_register_{PLURAL[kind]}", infos, registry, kind)
        registry.sort_by_plugin(kind, list(infos))  # pluggy calls the last registered plugin first
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
