"""Studies as files: one or more grids, where they run, and the leaderboard layout they are read in.

A study is what ``liftbench run`` runs, written down: ``liftbench run --study FILE.toml`` (or the name of a
registered study) reads one, every run writes the study it ran into its results folder (``study.toml``), and
``liftbench run --study RESULTS/study.toml`` runs it again. The command line's flags are a one-grid study.
This module reads and checks the file's *shape* only (keys, types); names are checked against the registry
when the study is run (:mod:`liftbench.study.plan`), so a study may name what another plugin provides and a
missing name errors only when that study runs. The format is documented in ``docs/studies.md``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from liftbench.devices import device_of  # noqa: F401  (re-exported: studies check their device)
from liftbench.errors import UsageError, not_utf8
from liftbench.names import did_you_mean

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

STUDY_FILE = "study.toml"
DEFAULT_RESULTS = "results/latest"


def _frozen(value: Mapping) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class Grid:
    """One grid: dataset × backbone × strategy × protocol × seed (× size × schedule), with its settings.

    Name lists hold what a user typed (names, aliases, globs, ``all``) until :func:`liftbench.study.plan.resolve`
    replaces them with registered names. ``size`` ``None`` means each dataset's default size. ``size`` and
    ``schedule`` are one value or a tuple of them: a tuple runs the cross product (:meth:`expanded`), while a
    single value stays a plain value so records written before lists existed read back unchanged. ``options``
    apply to every protocol of the grid that declares them, ``protocol_options`` to one protocol each.
    """

    datasets: tuple[str, ...] = ("synthetic",)
    backbones: tuple[str, ...] = ("vits",)
    strategies: tuple[str, ...] = ("all",)
    protocols: tuple[str, ...] = ("linear",)
    seeds: tuple[int, ...] = (0,)
    size: int | tuple[int, ...] | None = None
    weights: str = "pretrained"
    schedule: str | tuple[str, ...] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    protocol_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    dataset_options: Mapping[str, Any] = field(default_factory=dict)

    def sizes(self) -> tuple[int | None, ...]:
        """The grid's sizes as a tuple, whether it holds one or several (``(None,)``: each dataset's default)."""
        return self.size if isinstance(self.size, tuple) else (self.size,)

    def schedules(self) -> tuple[str | None, ...]:
        """The grid's schedules as a tuple, whether it holds one or several (``(None,)``: each strategy's own)."""
        return self.schedule if isinstance(self.schedule, tuple) else (self.schedule,)

    def expanded(self) -> tuple[Grid, ...]:
        """One grid per (size, schedule), each with a single size and schedule: what the planner takes, so
        :func:`liftbench.study.grid_runs.plan` never sees a list."""
        return tuple(replace(self, size=size, schedule=schedule) for size in self.sizes() for schedule in self.schedules())

    def cells(self, scheduled: Collection[str] | None = None) -> frozenset[tuple]:
        """What tells each planned run apart, once names are resolved: grids that overlap (a record merged from
        several commands) are counted and merged by these, so a run two grids share counts once.

        ``scheduled`` names the strategies that take a schedule (the registry knows; ``None``: assume all do):
        the planner gives the others no schedule, so several schedules plan them once, and they count once."""
        options = (self.weights, _frozen(self.options), _frozen(self.dataset_options))
        return frozenset(
            (d, b, s, p, seed, size, schedule if scheduled is None or s in scheduled else None, *options,
             _frozen(self.protocol_options.get(p, {})))
            for size in self.sizes() for schedule in self.schedules()
            for d in self.datasets for b in self.backbones for s in self.strategies for p in self.protocols
            for seed in self.seeds
        )  # fmt: skip


@dataclass(frozen=True)
class Layout:
    """How a study's results are meant to be read: which protocol tables, which metrics, the strategy
    significance is tested against, and whether the paper's reported rows stand beside the measured ones."""

    protocols: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None
    baseline: str | None = None
    reported: bool = False
    combine: bool = False  # the protocols side by side in one table (the paper's Table 3)

    def describe(self) -> str:
        parts = [f"protocol {','.join(self.protocols)}" if self.protocols else "every protocol",
                 ",".join(self.metrics) if self.metrics else "all metrics"]  # fmt: skip
        if self.baseline:
            parts.append(f"baseline {self.baseline}")
        if self.reported:
            parts.append("with reported")
        if self.combine:
            parts.append("protocols side by side")
        return "; ".join(parts)


@dataclass(frozen=True)
class Study:
    """Grids, where their results go and run, and how they are read."""

    name: str
    description: str = ""
    results: str = DEFAULT_RESULTS
    grids: tuple[Grid, ...] = (Grid(),)
    executor: str = "local"
    executor_options: Mapping[str, Any] = field(default_factory=dict)
    device: str | None = None
    leaderboard: Layout = Layout()
    source: str = ""  # where it was read from, for messages

    def runs(self, scheduled: Collection[str] | None = None) -> int:
        """Distinct planned runs: a run two grids share counts once (as :func:`~liftbench.study.plan.plan_study`
        plans it once); ``scheduled`` as in :meth:`Grid.cells`."""
        return len(frozenset().union(*(grid.cells(scheduled) for grid in self.grids)))

    def with_grids(self, **changes: Any) -> Study:
        """The study with ``changes`` applied to every grid (what command-line flags do)."""
        return replace(self, grids=tuple(replace(g, **changes) for g in self.grids))


# Reading ---------------------------------------------------------------------------------------------

STUDY_KEYS = ("name", "description", "results", "executor", "executor_options", "device", "leaderboard", "grid")
GRID_KEYS = tuple(Grid.__dataclass_fields__)
LAYOUT_KEYS = tuple(Layout.__dataclass_fields__)
NAME_LISTS = ("datasets", "backbones", "strategies", "protocols")


def _where(source: str) -> str:
    return f"study {source}" if source else "study"


def _check_keys(table: Mapping, valid: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in valid:
            raise UsageError(f"{where}: unknown key {key!r}{did_you_mean(key, valid)} valid: {', '.join(valid)}")


def _names(value: Any, key: str, where: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise UsageError(f"{where}: {key} must be a list of names or a comma list, got {value!r}")
    names = tuple(v.strip() for v in items if v.strip())
    if not names:
        raise UsageError(f"{where}: {key} is empty")
    return names


MAX_SEED = 2**31 - 1  # seeds are stored as int32 in every result row
MAX_SEED_COUNT = 10_000  # a count beyond this is a typo, not a study


def seeds_of(value: Any, where: str) -> tuple[int, ...]:
    """``5`` means seeds 0..4; a list (or ``"0,3,7"``) names them. The one parser of seeds, for the command line
    (``where`` = ``--seeds``) and study files alike; every seed must fit the results' int32 column."""
    shown = value
    if isinstance(value, str):
        try:
            value = [int(s) for s in value.split(",") if s.strip()] if "," in value else int(value)
        except ValueError:
            raise UsageError(f"{where}: invalid seeds {shown!r}: give a count (5) or a list (0,3,7)") from None
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise UsageError(f"{where}: invalid seeds {shown!r}: give a count (5) or a list (0,3,7)")
    if isinstance(value, int):
        if not 1 <= value <= MAX_SEED_COUNT:
            raise UsageError(f"{where}: invalid seeds {shown!r}: a count runs seeds 0..N-1 and must be in 1..{MAX_SEED_COUNT} "
                             "(at least one seed); list the seeds to run others (0,3,7)")  # fmt: skip
        return tuple(range(value))
    if not value or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        raise UsageError(f"{where}: invalid seeds {shown!r}: give a count (5) or a list of whole numbers")
    bad = next((s for s in value if not 0 <= s <= MAX_SEED), None)
    if bad is not None:
        raise UsageError(f"{where}: invalid seed {bad}: seeds must be in 0..{MAX_SEED} (they are stored as int32)")
    return tuple(dict.fromkeys(value))


def _listed(value: Any, key: str, where: str) -> list:
    """A value or a non-empty list of values, as a list."""
    if not isinstance(value, list):
        return [value]
    if not value:
        raise UsageError(f"{where}: {key} is an empty list; give one value or several")
    return value


def _one_or_many(values: list) -> Any:
    """One value as itself, several (duplicates dropped, order kept) as a tuple: a grid of one size is written
    back exactly as before lists were allowed."""
    values = list(dict.fromkeys(values))
    return values[0] if len(values) == 1 else tuple(values)


def sizes_of(value: Any, where: str) -> int | tuple[int, ...]:
    """``size``: a positive whole number or a list of them (the grid runs each); as text (``--size 32,64``)
    comma-separated. The one parser of sizes, for the command line (``where`` = ``--size``) and study files."""
    if isinstance(value, str):
        try:
            value = [int(part) for part in value.split(",") if part.strip()] or value
        except ValueError:
            raise UsageError(f"{where}: invalid size {value!r}: give positive integers separated by commas, e.g. 32,64") from None
    items = _listed(value, "size", where)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise UsageError(f"{where}: size must be a positive whole number or a list of them (or left out for "
                             f"each dataset's default), got {value!r}")  # fmt: skip
    return _one_or_many(items)


def schedules_of(value: Any, where: str) -> str | tuple[str, ...]:
    """``schedule``: one schedule (its planes comma-separated, ``HW,DW,DH,HW``) or several — a list, or as text
    ``;``-separated (``--schedule "HW,DW,DH,HW;HW,DH,DW,HW"``). The one parser of schedules, for the command line
    and study files; the planes themselves are checked when the grid is planned."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(";") if part.strip()]
        if not parts:
            raise UsageError(f"{where}: invalid schedule {value!r}: give a schedule such as HW,DW,DH,HW, or several "
                             "separated by ';'")  # fmt: skip
        value = parts if len(parts) > 1 else parts[0]
    return _one_or_many([_text(v, "schedule", where) for v in _listed(value, "schedule", where)])


def _table(value: Any, key: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: {key} must be a table (KEY = VALUE lines), got {value!r}")
    return {str(k).replace("-", "_"): v for k, v in value.items()}


def _text(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value.strip()


def parse_grid(table: Any, where: str) -> Grid:
    """A :class:`Grid` from one ``[[grid]]`` table."""
    if not isinstance(table, dict):
        raise UsageError(f"{where}: a grid must be a table, got {table!r}")
    _check_keys(table, GRID_KEYS, where)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in NAME_LISTS:
            values[key] = _names(value, key, where)
        elif key == "seeds":
            values[key] = seeds_of(value, where)
        elif key == "size":
            values[key] = sizes_of(value, where)
        elif key == "schedule":
            values[key] = schedules_of(value, where)
        elif key == "weights":
            values[key] = _text(value, key, where)
        elif key == "protocol_options":
            if not isinstance(value, dict):
                raise UsageError(f"{where}: protocol_options must hold one table per protocol, got {value!r}")
            values[key] = {str(name): _table(opts, f"protocol_options.{name}", where) for name, opts in value.items()}
        else:  # options, dataset_options
            values[key] = _table(value, key, where)
    return Grid(**values)


def parse_layout(table: Any, where: str) -> Layout:
    if not isinstance(table, dict):
        raise UsageError(f"{where}: leaderboard must be a table, got {table!r}")
    _check_keys(table, LAYOUT_KEYS, where)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("protocols", "metrics"):
            values[key] = _names(value, key, where)
        elif key == "baseline":
            values[key] = _text(value, key, where)
        elif not isinstance(value, bool):
            raise UsageError(f"{where}: {key} must be true or false, got {value!r}")
        else:
            values[key] = value
    return Layout(**values)


def parse_study(data: Mapping[str, Any], *, source: str = "", name: str | None = None) -> Study:
    """A :class:`Study` from a parsed TOML document (names unchecked); ``name`` is the default name."""
    where = _where(source)
    _check_keys(data, STUDY_KEYS, where)
    if "grid" not in data:  # never a silent default grid: the file would run something nobody wrote down
        raise UsageError(f"{where} has no [[grid]] table; a study needs at least one (docs/studies.md)")
    grids = data["grid"]
    grids = [grids] if isinstance(grids, dict) else grids
    if not isinstance(grids, list) or not grids:
        raise UsageError(f"{where}: give at least one [[grid]] table")
    values: dict[str, Any] = {
        "name": _text(data.get("name", name or Path(source).stem or "study"), "name", where),
        "grids": tuple(parse_grid(g, f"{where}, grid {i + 1}") for i, g in enumerate(grids)),
        "source": source,
    }
    for key in ("description", "results", "executor", "device"):
        if key in data:
            values[key] = _text(data[key], key, where) if key != "description" else str(data[key]).strip()
    if "device" in values:
        values["device"] = device_of(values["device"], where)
    if "executor_options" in data:
        values["executor_options"] = _table(data["executor_options"], "executor_options", where)
    if "leaderboard" in data:
        values["leaderboard"] = parse_layout(data["leaderboard"], f"{where}, [leaderboard]")
    return Study(**values)


def parse_text(text: str, *, source: str = "", name: str | None = None) -> Study:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{_where(source)} is not valid TOML: {exc}") from None
    return parse_study(data, source=source, name=name)


def read_study(path: Path | str) -> Study:
    """The study in a TOML file; a missing, unreadable or non-UTF-8 file is a usage error naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read study file {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise not_utf8(f"study file {str(path)!r}", exc) from None
    return parse_text(text, source=str(path))


def registered_study(entry) -> Study:
    """The study a registered :class:`~liftbench.plugin.entries.StudyEntry` names, parsed (its names are checked
    against the registry only when it is planned)."""
    text, source = entry.read()
    return replace(parse_text(text, source=source, name=entry.name), name=entry.name)


def folder_study(folder: Path) -> tuple[Study | None, str | None, str]:
    """The study recorded in ``folder/study.toml``: ``(study, text, problem)`` — ``(None, None, "")`` without
    one, ``(None, text, why)`` when it cannot be read as a study (bytes that are not UTF-8 are shown replaced).
    The one reader of a folder's record."""
    path = Path(folder) / STUDY_FILE
    if not path.is_file():
        return None, None, ""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, data.decode("utf-8", errors="replace"), str(not_utf8(f"study {path}", exc))
    try:
        return parse_text(text, source=str(path)), text, ""
    except UsageError as exc:
        return None, text, str(exc)


def rerun_command(study_file: Path | str) -> str:
    """The command that runs a recorded study again, its path shell-quoted (a folder named ``my results`` or
    ``a;b`` pastes as one argument)."""
    return f"liftbench run --study {shlex.quote(str(study_file))}"
