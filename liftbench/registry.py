"""Named, lazily loaded strategies, backbones, datasets, protocols and executors.

Plugins fill a :class:`Registry` through kind-specific registrars (tox's registrar pattern). An entry
names its implementation as ``"module:attr"`` and is imported only by :meth:`Entry.load`. The
registry also turns what users type (``pcg,3d``, ``'vit*'``, ``all``) into entries, and answers an
unknown name with the closest match and the available ones.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from liftbench.errors import UsageError

KINDS = ("strategy", "backbone", "dataset", "protocol", "executor")
PLURAL = {
    "strategy": "strategies",
    "backbone": "backbones",
    "dataset": "datasets",
    "protocol": "protocols",
    "executor": "executors",
}


class PluginError(UsageError):
    """Two plugins claim the same name, or a plugin registers something malformed."""


def load_target(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: typos, and swapped neighbours ('pgc' → 'pcg') cost 1."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[len(b)]


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate a typo most likely meant: fewest edits, then most similar; None if none is close."""
    if not candidates:
        return None
    scored = sorted(candidates, key=lambda c: (edit_distance(name, c), -difflib.SequenceMatcher(None, name, c).ratio()))
    best = scored[0]
    return best if edit_distance(name, best) <= max(1, len(name) // 2) else None


@dataclass(frozen=True)
class Entry:
    """One registered thing. ``target`` is ``"module:attr"``; strategies map families to targets."""

    kind: str
    name: str
    target: str | Mapping[str, str]
    plugin: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def families(self) -> tuple[str, ...]:
        """For strategies: the backbone families it can lift; for backbones: its own family."""
        if isinstance(self.target, Mapping):
            return tuple(self.target)
        family = self.meta.get("family")
        return (family,) if family else ()

    def load(self, family: str | None = None) -> Any:
        """Import the implementation (for a strategy: the lifter for ``family``)."""
        if isinstance(self.target, Mapping):
            if family not in self.target:
                raise KeyError(family)
            target = self.target[family]
        else:
            target = self.target
        try:
            return load_target(target)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.plugin!r} cannot be loaded ({target}): {type(exc).__name__}: {exc}"
            ) from None


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not name or any(c in name for c in ",*?[] "):
        raise PluginError(f"invalid {kind} name {name!r}: names are non-empty and contain no ',', ' ' or glob characters")
    return name


def _check_target(kind: str, name: str, target: str) -> str:
    if not isinstance(target, str) or ":" not in target:
        raise PluginError(f"{kind} {name!r}: target {target!r} must be a 'module:attr' string")
    return target


class _Registrar:
    """Base of the objects a registrar hook receives; binds additions to the calling plugin."""

    kind = ""

    def __init__(self, registry: Registry, plugin: str) -> None:
        self._registry = registry
        self._plugin = plugin

    def _add(self, name, target, aliases, description, meta) -> Entry:
        entry = Entry(
            kind=self.kind,
            name=_check_name(self.kind, name),
            target=target,
            plugin=self._plugin,
            aliases=tuple(_check_name(self.kind, a) for a in aliases),
            description=description,
            meta=dict(meta),
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
        """Add a strategy; ``lifters`` maps backbone family to ``"module:attr"`` of its lifter.

        ``notes`` maps a family to a remark ``liftbench list`` shows. ``same_as`` maps a family to the
        strategy this one is identical to there (pcm is pcg for CNNs): a grid with both runs it once.
        """
        if not lifters:
            raise PluginError(f"strategy {name!r}: lifters must name at least one backbone family")
        targets = {fam: _check_target(self.kind, name, t) for fam, t in lifters.items()}
        return self._add(name, targets, aliases, description, {"defaults": dict(defaults or {}), "notes": dict(notes or {}), "same_as": dict(same_as or {})})


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
    ) -> Entry:
        """Add a backbone; ``options`` are passed to ``target`` (e.g. the timm model name)."""
        if family not in ("vit", "cnn"):
            raise PluginError(f"backbone {name!r}: invalid family {family!r}; valid: vit, cnn")
        meta = {"family": family, "options": dict(options or {})}
        return self._add(name, _check_target(self.kind, name, target), aliases, description, meta)


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
        options: Mapping[str, Any] | None = None,
    ) -> Entry:
        """Add a dataset; ``sizes`` lists the input sizes it offers (empty: any)."""
        meta = {"sizes": tuple(sizes), "has_masks": has_masks, "options": dict(options or {})}
        return self._add(name, _check_target(self.kind, name, target), aliases, description, meta)


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
        needs_masks: bool = False,
    ) -> Entry:
        """Add a protocol; ``needs_masks`` makes it skip datasets without lesion masks."""
        return self._add(name, _check_target(self.kind, name, target), aliases, description, {"needs_masks": needs_masks})


class ExecutorRegistrar(_Registrar):
    """Receives ``liftbench_register_executors``."""

    kind = "executor"

    def add(self, name: str, target: str, *, aliases: Iterable[str] = (), description: str = "") -> Entry:
        """Add an executor."""
        return self._add(name, _check_target(self.kind, name, target), aliases, description, {})


REGISTRARS = {
    "strategy": StrategyRegistrar,
    "backbone": BackboneRegistrar,
    "dataset": DatasetRegistrar,
    "protocol": ProtocolRegistrar,
    "executor": ExecutorRegistrar,
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

    def registrar(self, kind: str, plugin: str) -> _Registrar:
        """The registrar object handed to ``plugin``'s hook for ``kind``."""
        return REGISTRARS[kind](self, plugin)

    def add(self, entry: Entry) -> None:
        """Add an entry; a name or alias already taken is an error naming both plugins."""
        lookup = self._lookup[entry.kind]
        for key in (entry.name, *entry.aliases):
            owner = lookup.get(key.lower())
            if owner is not None:
                other = self._entries[entry.kind][owner]
                raise PluginError(
                    f"{entry.kind} name collision: {key!r} is registered by plugin {other.plugin!r} "
                    f"(as {other.name!r}) and again by plugin {entry.plugin!r} (as {entry.name!r}); "
                    f"disable one with --disable-plugin or LIFTBENCH_DISABLE_PLUGINS"
                )
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
        hint = f"; did you mean {self._lookup[kind][close]!r}?" if close else ""
        available = ", ".join(self.names(kind)) or "(none registered)"
        return f"unknown {kind} {name!r}{hint or ';'} available: {available}"
