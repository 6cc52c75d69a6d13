"""Named, lazily loaded strategies, backbones, datasets, protocols and executors.

Plugins fill a :class:`Registry` through kind-specific registrars (tox's registrar pattern). Each
registration becomes a typed, frozen entry (:mod:`liftbench.plugin.entries`) that names its implementation as
``"module:attr"``, imported (and checked) only by its ``load()``. The
registry also turns what users type (``pcg,3d``, ``'vit*'``, ``all``) into entries, and answers an
unknown name with the closest match and the available ones.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from liftbench.errors import UsageError
from liftbench.names import closest, did_you_mean, edit_distance  # noqa: F401  (re-exported)
from liftbench.plugin.entries import ENTRY_TYPES, Entry, PluginError, load_target  # noqa: F401  (re-exported)
from liftbench.plugin.options import Option

KINDS = ("strategy", "backbone", "dataset", "protocol", "executor", "study")
PLURAL = {
    "strategy": "strategies",
    "backbone": "backbones",
    "dataset": "datasets",
    "protocol": "protocols",
    "executor": "executors",
    "study": "studies",
}


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not name or any(c in name for c in ",*?[] "):
        raise PluginError(f"invalid {kind} name {name!r}: names are non-empty and contain no ',', ' ' or glob characters")
    return name


def _check_target(kind: str, name: str, target: str) -> str:
    if not isinstance(target, str) or ":" not in target:
        raise PluginError(f"{kind} {name!r}: target {target!r} must be a 'module:attr' string")
    return target


def _check_options(kind: str, name: str, options: Mapping[str, Any] | None) -> dict[str, Option]:
    options = dict(options or {})
    for key, value in options.items():
        if not isinstance(value, Option):
            raise PluginError(f"{kind} {name!r}: option {key!r} must be declared as liftbench.Option(type, default, help), got {value!r}")
        if value.below is not None and value.below not in options:
            raise PluginError(f"{kind} {name!r}: option {key!r} must stay below {value.below!r}, which it does not declare")
        try:  # a declared default is a value like any other: it must be within the option's own bounds
            value.cast(key, value.default, f"{kind} {name!r} (its declared default)")
        except UsageError as exc:
            raise PluginError(str(exc)) from None
    return options


class _Registrar:
    """Base of the objects a registrar hook receives. ``plugin_of()`` names the plugin whose hook is
    calling (the plugin manager calls every plugin's hook with one registrar)."""

    kind = ""

    def __init__(self, registry: Registry, plugin_of: Callable[[], str]) -> None:
        self._registry = registry
        self._plugin_of = plugin_of

    def _add(self, name: str, aliases: Iterable[str], **fields: Any) -> Entry:
        plugin = self._plugin_of()
        info = self._registry.plugins.get(plugin) or PluginInfo(plugin)
        entry = ENTRY_TYPES[self.kind](
            name=_check_name(self.kind, name),
            plugin=plugin,
            aliases=tuple(_check_name(self.kind, a) for a in aliases),
            distribution=info.distribution,
            version=info.version,
            **fields,
        )
        self._registry.add(entry)
        return entry


class StrategyRegistrar(_Registrar):
    """Receives ``liftbench_register_strategies``."""

    kind = "strategy"

    def add(
        self,
        name: str,
        lifters: Mapping[str, str],
        *,
        aliases: Iterable[str] = (),
        description: str = "",
        defaults: Mapping[str, Any] | None = None,
        notes: Mapping[str, str] | None = None,
        same_as: Mapping[str, str] | None = None,
    ) -> Entry:
        """Add a strategy; the fields are those of :class:`liftbench.plugin.entries.StrategyEntry`."""
        if not lifters:
            raise PluginError(f"strategy {name!r}: lifters must name at least one backbone family")
        targets = {_check_name("family", fam): _check_target(self.kind, name, t) for fam, t in lifters.items()}
        return self._add(name, aliases, lifters=targets, description=description, defaults=dict(defaults or {}),
                         notes=dict(notes or {}), same_as=dict(same_as or {}))  # fmt: skip


class BackboneRegistrar(_Registrar):
    """Receives ``liftbench_register_backbones``."""

    kind = "backbone"

    def add(
        self,
        name: str,
        target: str,
        *,
        family: str,
        aliases: Iterable[str] = (),
        description: str = "",
        options: Mapping[str, Any] | None = None,
        architecture: str = "",
        bf16: bool = False,
        locate: str = "",
    ) -> Entry:
        """Add a backbone; the fields are those of :class:`liftbench.plugin.entries.BackboneEntry`. Any family
        name is valid: a plugin adding a family also registers the strategies that lift it."""
        options = dict(options or {})
        locate = _check_target(self.kind, name, locate) if locate else ""
        return self._add(name, aliases, target=_check_target(self.kind, name, target), description=description,
                         family=_check_name("family", family), options=options, bf16=bool(bf16), locate=locate,
                         architecture=architecture or str(options.get("model_name", "")))  # fmt: skip


class DatasetRegistrar(_Registrar):
    """Receives ``liftbench_register_datasets``."""

    kind = "dataset"

    def add(
        self,
        name: str,
        target: str,
        *,
        aliases: Iterable[str] = (),
        description: str = "",
        sizes: Iterable[int] = (),
        has_masks: bool = False,
        has_labels: bool = True,
        default_size: int | None = None,
        options: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Option] | None = None,
    ) -> Entry:
        """Add a dataset; the fields are those of :class:`liftbench.plugin.entries.DatasetEntry`."""
        params = None if parameters is None else _check_options(self.kind, name, parameters)
        return self._add(name, aliases, target=_check_target(self.kind, name, target), description=description,
                         sizes=tuple(int(s) for s in sizes), has_masks=bool(has_masks), has_labels=bool(has_labels),
                         default_size=None if default_size is None else int(default_size), options=dict(options or {}),
                         parameters=params)  # fmt: skip


class ProtocolRegistrar(_Registrar):
    """Receives ``liftbench_register_protocols``."""

    kind = "protocol"

    def add(
        self,
        name: str,
        target: str,
        *,
        aliases: Iterable[str] = (),
        description: str = "",
        options: Mapping[str, Option] | None = None,
        quick: Mapping[str, Any] | None = None,
        needs_masks: bool = False,
        needs_labels: bool = True,
        refuses: Mapping[tuple[str, str], str] | None = None,
    ) -> Entry:
        """Add a protocol; the fields are those of :class:`liftbench.plugin.entries.ProtocolEntry`."""
        declared = _check_options(self.kind, name, options)
        unknown = [k for k in (quick or {}) if k not in declared]
        if unknown:
            raise PluginError(f"protocol {name!r}: quick preset sets undeclared option(s) {', '.join(unknown)}")
        return self._add(name, aliases, target=_check_target(self.kind, name, target), description=description,
                         options=declared, quick=dict(quick or {}), needs_masks=bool(needs_masks),
                         needs_labels=bool(needs_labels), refuses=dict(refuses or {}))  # fmt: skip


class ExecutorRegistrar(_Registrar):
    """Receives ``liftbench_register_executors``."""

    kind = "executor"

    def add(
        self,
        name: str,
        target: str,
        *,
        aliases: Iterable[str] = (),
        description: str = "",
        options: Mapping[str, Option] | None = None,
        in_process: bool = False,
    ) -> Entry:
        """Add an executor; the fields are those of :class:`liftbench.plugin.entries.ExecutorEntry`."""
        return self._add(name, aliases, target=_check_target(self.kind, name, target), description=description,
                         options=_check_options(self.kind, name, options), in_process=bool(in_process))  # fmt: skip


class StudyRegistrar(_Registrar):
    """Receives ``liftbench_register_studies``."""

    kind = "study"

    def add(self, name: str, target: str, *, aliases: Iterable[str] = (), description: str = "") -> Entry:
        """Add a study file; the fields are those of :class:`liftbench.plugin.entries.StudyEntry`."""
        return self._add(name, aliases, target=_check_target(self.kind, name, target), description=description)


REGISTRARS = {
    "strategy": StrategyRegistrar,
    "backbone": BackboneRegistrar,
    "dataset": DatasetRegistrar,
    "protocol": ProtocolRegistrar,
    "executor": ExecutorRegistrar,
    "study": StudyRegistrar,
}


@dataclass
class PluginInfo:
    """What ``liftbench list`` says about a plugin: where it comes from and whether it loaded."""

    name: str
    distribution: str = ""
    version: str = ""
    error: str = ""


class Registry:
    """All registered entries by kind, plus the plugins they came from."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self._lookup: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
        self.plugins: dict[str, PluginInfo] = {}
        # None: a name collision raises (every command but `liftbench list plugins`); a list: each collision is
        # recorded here and on the second plugin's PluginInfo, and the second entry is left out
        self.collisions: list[str] | None = None

    def registrar(self, kind: str, plugin: str | Callable[[], str]) -> _Registrar:
        """The registrar handed to the hooks of ``kind``; ``plugin`` names the caller (or says who it is)."""
        return REGISTRARS[kind](self, plugin if callable(plugin) else (lambda: plugin))

    def sort_by_plugin(self, kind: str, plugins: list[str]) -> None:
        """Order entries by their plugin's load order (stable within a plugin): listings, ``all`` and
        tables follow the order plugins are loaded in, whatever order their hooks were called in."""
        rank = {name: i for i, name in enumerate(plugins)}
        ordered = sorted(self._entries[kind].values(), key=lambda e: rank.get(e.plugin, len(rank)))
        self._entries[kind] = {e.name: e for e in ordered}

    def has(self, kind: str, name: str) -> bool:
        """Whether ``name`` (or an alias) is registered as ``kind``."""
        return str(name).lower() in self._lookup[kind]

    def order(self, kind: str, name: str) -> int:
        """Registration position of ``name`` (tables list entries in this order; unknown names last)."""
        key = self._lookup[kind].get(str(name).lower())
        return list(self._entries[kind]).index(key) if key is not None else len(self._entries[kind])

    def add(self, entry: Entry) -> None:
        """Add an entry; a name or alias already taken is an error naming both plugins (or, while
        :attr:`collisions` is a list, recorded there and on the second plugin, and the entry left out)."""
        lookup = self._lookup[entry.kind]
        for key in (entry.name, *entry.aliases):
            owner = lookup.get(key.lower())
            if owner is not None:
                other = self._entries[entry.kind][owner]
                message = (
                    f"{entry.kind} name collision: {key!r} is registered by plugin {other.origin} "
                    f"(as {other.name!r}) and again by plugin {entry.origin} (as {entry.name!r}); "
                    f"uninstall one distribution, or disable one plugin with --disable-plugin or LIFTBENCH_DISABLE_PLUGINS"
                    " (liftbench list plugins shows every plugin)"
                )  # fmt: skip
                if self.collisions is None:
                    raise PluginError(message)
                self.collisions.append(message)
                info = self.plugins.setdefault(entry.plugin, PluginInfo(entry.plugin))
                left_out = f"{message.split(';')[0]}; {entry.kind} {entry.name!r} of this plugin left out"
                info.error = f"{info.error}; {left_out}" if info.error else left_out
                return
        self._entries[entry.kind][entry.name] = entry
        for key in (entry.name, *entry.aliases):
            lookup[key.lower()] = entry.name

    def entries(self, kind: str) -> list[Entry]:
        """Every entry of ``kind`` in registration order."""
        return list(self._entries[kind].values())

    def names(self, kind: str) -> list[str]:
        return list(self._entries[kind])

    def get(self, kind: str, name: str) -> Entry:
        """The entry ``name`` (or alias) of ``kind``; unknown names raise a helpful UsageError."""
        key = self._lookup[kind].get(str(name).lower())
        if key is None:
            raise UsageError(self._unknown_message(kind, str(name)))
        return self._entries[kind][key]

    def resolve(self, kind: str, text: str | Iterable[str]) -> list[Entry]:
        """Entries for what a user typed: comma lists, aliases, glob patterns and ``all``.

        Order follows the user's list (then registration order within a pattern); duplicates go.
        """
        items = text.split(",") if isinstance(text, str) else list(text)
        items = [item.strip() for item in items if item and item.strip()]
        if not items:
            raise UsageError(f"no {kind} given; available: {', '.join(self.names(kind)) or '(none)'}")
        chosen: dict[str, Entry] = {}
        for item in items:
            if item.lower() == "all":
                matches = self.entries(kind)
            elif any(c in item for c in "*?["):
                pattern = item.lower()
                matches = [e for e in self.entries(kind) if any(fnmatch.fnmatchcase(k.lower(), pattern) for k in (e.name, *e.aliases))]
                if not matches:
                    raise UsageError(f"no {kind} matches {item!r}; available: {', '.join(self.names(kind))}")
            else:
                matches = [self.get(kind, item)]
            for entry in matches:
                chosen.setdefault(entry.name, entry)
        return list(chosen.values())

    def _unknown_message(self, kind: str, name: str) -> str:
        close = closest(name.lower(), list(self._lookup[kind]))
        hint = did_you_mean(name, [self._lookup[kind][close]] if close else [])
        available = ", ".join(self.names(kind)) or "(none registered)"
        return f"unknown {kind} {name!r}{hint} available: {available}"
