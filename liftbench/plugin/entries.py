"""Typed registry entries: one frozen record per kind, documented field by field.

A plugin creates these through its registrar (:mod:`liftbench.plugin.registry`); the core reads their fields,
never string keys. ``load()`` imports the implementation named by a ``"module:attr"`` target only when a
run needs it, and checks what it got (a callable; for a strategy, a lifter class or factory), so a wrong
target fails at once with the plugin and the target named — not deep inside a run.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

from liftbench.errors import PluginError, UsageError, not_utf8
from liftbench.plugin.options import Option

__all__ = ["ENTRY_TYPES", "Entry", "PluginError", "load_target"]


def load_target(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True, eq=False)
class Entry:
    """What every entry has.

    :param name: the name users type (``pcg``); unique per kind across all plugins, like its aliases.
    :param target: ``"module:attr"`` of the implementation (strategies use ``lifters`` instead).
    :param plugin: the plugin (entry-point name) that registered it.
    :param aliases: other names that select it.
    :param description: one line for ``liftbench list``.
    :param distribution: the installed distribution providing the plugin ('' for in-process plugins).
    :param version: that distribution's version; recorded in result rows and part of a run's key.
    """

    name: str
    target: str = ""
    plugin: str = ""
    aliases: tuple[str, ...] = ()
    description: str = ""
    distribution: str = ""
    version: str = ""

    kind: ClassVar[str] = ""
    expects: ClassVar[str] = "a callable"

    @property
    def provider(self) -> str:
        """``plugin (distribution version)``: who provides this entry, recorded in result rows."""
        dist = " ".join(part for part in (self.distribution, self.version) if part)
        return f"{self.plugin} ({dist})" if dist else self.plugin

    @property
    def origin(self) -> str:
        """``'plugin' (distribution version)`` for messages: what to uninstall or disable."""
        dist = " ".join(part for part in (self.distribution, self.version) if part)
        return f"{self.plugin!r} ({dist})" if dist else repr(self.plugin)

    def load(self) -> Any:
        """Import the implementation and check it is what this kind needs."""
        return self._load(self.target)

    def _load(self, target: str) -> Any:
        try:
            obj = load_target(target)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.origin} cannot be loaded ({target}): {type(exc).__name__}: {exc}"
            ) from None
        if not self._accepts(obj):
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.origin}: target {target} is "
                f"{type(obj).__name__} {obj!r:.80}, expected {self.expects}"
            )
        return obj

    def _accepts(self, obj: Any) -> bool:
        return callable(obj)


@dataclass(frozen=True, eq=False)
class StrategyEntry(Entry):
    """A lifting strategy.

    :param lifters: backbone family -> ``"module:attr"`` of its lifter, ``lifter(model, **options)``
        returning a :class:`liftbench.lifting.Lifted` (usually a ``Lifted`` subclass).
    :param defaults: options passed to the lifter unless overridden; a ``schedule`` default makes the
        strategy take ``--schedule``, a ``pooling`` default is recorded in result rows.
    :param notes: family -> a remark ``liftbench list`` shows.
    :param same_as: family -> the strategy this one equals there (pcm is pcg for CNNs): run once.
    """

    lifters: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)
    same_as: Mapping[str, str] = field(default_factory=dict)

    kind: ClassVar[str] = "strategy"
    expects: ClassVar[str] = "a liftbench.lifting.Lifted subclass or a callable returning one"

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(self.lifters)

    @property
    def schedule(self) -> str:
        return str(self.defaults.get("schedule", ""))

    @property
    def pooling(self) -> str:
        return str(self.defaults.get("pooling", ""))

    def load(self, family: str | None = None) -> Any:
        """The lifter for ``family``."""
        if family not in self.lifters:
            raise KeyError(family)
        return self._load(self.lifters[family])

    def _accepts(self, obj: Any) -> bool:
        if inspect.isclass(obj):
            from liftbench.lifting.base import Lifted

            return issubclass(obj, Lifted)
        return callable(obj)


@dataclass(frozen=True, eq=False)
class BackboneEntry(Entry):
    """A pretrained 2D backbone.

    :param family: which lifters apply (``vit``, ``cnn``, or a family a plugin's strategies lift).
    :param options: keyword arguments for the target ``create(weights, **options) -> (model, WeightsInfo)``.
    :param architecture: what the weights are loaded into (e.g. the timm model name), for result rows.
    :param bf16: passed the bf16 fidelity gate (its probe results unchanged at printed precision), so
        ``--dtype auto`` may use bf16 on hardware with native bf16; ``False`` keeps ``auto`` at fp32.
    :param locate: ``"module:attr"`` of ``locate(weights, **options) -> path or None``: the local file that
        ``pretrained`` weights load from, without building the model, so the run key names the weights by that
        file's content (:mod:`liftbench.run.inputs`). It raises the loader's own missing-file error where the file
        is missing and cannot be fetched; None: nothing local (the loader downloads when the run starts).
        Without a locator, ``pretrained`` weights are identified by that word alone.
    """

    family: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    architecture: str = ""
    bf16: bool = False
    locate: str = ""

    def weights_file(self, weights: str):
        """The local file ``weights`` (``pretrained``) would load, through the entry's locator (None: unknown)."""
        if not self.locate:
            return None
        return self._load(self.locate)(weights, **self.options)

    kind: ClassVar[str] = "backbone"
    expects: ClassVar[str] = "a callable create(weights, **options) -> (model, WeightsInfo)"

    @property
    def families(self) -> tuple[str, ...]:
        return (self.family,)


@dataclass(frozen=True, eq=False)
class DatasetEntry(Entry):
    """A volume dataset.

    :param sizes: the input sizes it offers (empty: any).
    :param has_masks: it provides lesion masks (protocols that need masks run on it).
    :param has_labels: it provides class labels (segmentation-only datasets do not: classification
        protocols on them are skipped pairs).
    :param default_size: the size a grid uses when the user names none (``None``: 64); lets one grid mix
        datasets of different native sizes (LIDC at 160, MMWHS at 64).
    :param options: fixed keyword arguments for the target ``load(size, data_root, **options)``.
    :param parameters: options a user may set (``--dataset-opt KEY=VALUE``), typed; ``None`` accepts
        any name as text (for plugins that declare nothing).
    """

    sizes: tuple[int, ...] = ()
    has_masks: bool = False
    has_labels: bool = True
    default_size: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Option] | None = None

    kind: ClassVar[str] = "dataset"
    expects: ClassVar[str] = "a callable load(size, data_root, **options) -> VolumeDataset"


@dataclass(frozen=True, eq=False)
class ProtocolEntry(Entry):
    """An evaluation protocol.

    :param options: its options, typed, with the defaults a run uses (the paper's values for the
        built-ins); each gets a ``--flag`` and is part of the run's key.
    :param quick: values ``--quick`` substitutes (a smoke-test preset).
    :param needs_masks: it runs only on datasets with lesion masks (others are skipped pairs).
    :param needs_labels: it runs only on datasets with class labels (segmentation-only datasets are
        skipped pairs).
    :param refuses: ``(family, strategy) -> reason`` for lifted backbones it does not run on (LoRA on
        liftings that convert modules); those pairs are skipped at planning with the reason.
    """

    options: Mapping[str, Option] = field(default_factory=dict)
    quick: Mapping[str, Any] = field(default_factory=dict)
    needs_masks: bool = False
    needs_labels: bool = True
    refuses: Mapping[tuple[str, str], str] = field(default_factory=dict)

    kind: ClassVar[str] = "protocol"
    expects: ClassVar[str] = "a callable run(ctx: RunContext) -> ProtocolResult"


@dataclass(frozen=True, eq=False)
class ExecutorEntry(Entry):
    """Where a grid's runs execute.

    :param options: its options, typed; the command line offers them as ``--<executor>-<option>``.
    :param in_process: runs execute in the driver's own process (no job scripts, no remote workers).
    """

    options: Mapping[str, Option] = field(default_factory=dict)
    in_process: bool = False

    kind: ClassVar[str] = "executor"
    expects: ClassVar[str] = "a callable execute(runs, ctx) -> None"


@dataclass(frozen=True, eq=False)
class StudyEntry(Entry):
    """A named study: grids to run and the leaderboard layout to read them in (:mod:`liftbench.study.model`).

    :param target: ``"package:path/in/package.toml"``, a study file shipped as package data (read with
        :mod:`importlib.resources`), or ``"file:/absolute/path.toml"``. It is read only when the study is
        listed or run, and its names are checked against the registry only when it is run, so a study may
        name datasets or protocols another plugin provides.
    """

    kind: ClassVar[str] = "study"
    expects: ClassVar[str] = "a readable study TOML file"

    def load(self) -> Any:
        """The study, parsed (names not yet checked against the registry). Kept for plugins written against 0.1;
        liftbench itself calls :func:`liftbench.study.model.registered_study` — the study stage parses, this
        stage only reads (:meth:`read`): the one import against the layers, named in the import contract."""
        from liftbench.study.model import registered_study

        return registered_study(self)

    def read(self) -> tuple[str, str]:
        """``(text, source)`` of the study file, as a plugin shipped it (the study stage parses it)."""
        package, _, relative = self.target.partition(":")
        if package == "file":
            what, read = f"study file {relative!r}", Path(relative).read_text
            source = relative
        else:
            what, read = f"study {self.name!r} from plugin {self.origin or '?'} ({self.target})", files(package).joinpath(relative).read_text
            source = f"{self.name} ({self.target})"
        try:
            return read(encoding="utf-8"), source
        except (ModuleNotFoundError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            if package == "file":
                raise UsageError(f"cannot read {what}: {reason}") from None
            raise UsageError(f"study {self.name!r} from plugin {self.origin or '?'}: cannot read {self.target}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise not_utf8(what, exc) from None


ENTRY_TYPES: dict[str, type[Entry]] = {
    cls.kind: cls for cls in (StrategyEntry, BackboneEntry, DatasetEntry, ProtocolEntry, ExecutorEntry, StudyEntry)
}
