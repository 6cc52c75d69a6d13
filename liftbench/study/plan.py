"""A study against the registry: names checked and expanded, the runs planned, the study recorded.

Resolution happens when a study is run (or counted), never when it is registered, so a study that names a
dataset another plugin has not registered yet fails only when it runs — with the same did-you-mean message
and exit status 2 as the command line. The resolved study (registered names instead of globs, aliases and
``all``; seeds listed; options cast to their declared types) is what ``RESULTS/study.toml`` records.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from liftbench.errors import UsageError
from liftbench.names import did_you_mean
from liftbench.plugin.registry import Registry
from liftbench.study.model import STUDY_FILE, Grid, Layout, Study, device_of, folder_study


def _cast_options(options: dict, protocols) -> dict:
    """``options`` cast by the first protocol declaring each (undeclared names stay: the planner names them)."""
    out = {}
    for key, value in options.items():
        owner = next((p for p in protocols if key in p.options), None)
        out[key] = owner.options[key].cast(key, value, f"protocol {owner.name!r}") if owner else value
    return out


def resolve_grid(grid: Grid, registry: Registry, where: str) -> Grid:
    """The grid with registered names only (what was typed resolved) and options cast."""
    try:
        protocols = registry.resolve("protocol", grid.protocols)
        unknown = [name for name in grid.protocol_options if not any(name in (p.name, *p.aliases) for p in protocols)]
        if unknown:
            raise UsageError(f"protocol_options names {unknown[0]!r}, not a protocol of this grid; "
                             f"its protocols: {', '.join(p.name for p in protocols)}")  # fmt: skip
        by_name = {alias: p for p in protocols for alias in (p.name, *p.aliases)}
        per_protocol = {by_name[n].name: _cast_options(dict(o), [by_name[n]]) for n, o in grid.protocol_options.items()}
        return replace(
            grid,
            datasets=tuple(e.name for e in registry.resolve("dataset", grid.datasets)),
            backbones=tuple(e.name for e in registry.resolve("backbone", grid.backbones)),
            strategies=tuple(e.name for e in registry.resolve("strategy", grid.strategies)),
            protocols=tuple(p.name for p in protocols),
            options=_cast_options(dict(grid.options), protocols),
            protocol_options=per_protocol,
        )
    except UsageError as exc:
        raise _prefixed(where, exc) from None


def _labels(study: Study) -> list[str]:
    """What an error in each grid is prefixed with: the study and grid for a study file or a registered study,
    nothing for the command line's own one-grid study (its flags need no introduction)."""
    if not study.source:
        return [""] * len(study.grids)
    label = f"study {study.name!r}" + (f" ({study.source})" if study.name != Path(study.source).stem else "")
    return [f"{label}, grid {i + 1}" if len(study.grids) > 1 else label for i in range(len(study.grids))]


def _prefixed(where: str, exc: UsageError) -> UsageError:
    return UsageError(f"{where}: {exc}") if where else exc


def resolve_layout(layout: Layout, registry: Registry) -> Layout:
    """The ``[leaderboard]`` table with registered names: its protocols resolved (aliases, globs), its baseline a
    registered strategy's canonical name, its metrics ones the leaderboard knows — a typo there would otherwise
    only show as a table that silently leaves things out."""
    from liftbench.metrics import METRIC_NAMES

    for metric in layout.metrics or ():
        if metric not in METRIC_NAMES:
            hint = did_you_mean(metric, METRIC_NAMES, ordered=True)  # in the leaderboard's order
            raise UsageError(f"[leaderboard]: unknown metric {metric!r}{hint} valid: {', '.join(METRIC_NAMES)}")
    try:
        protocols = tuple(p.name for p in registry.resolve("protocol", layout.protocols)) if layout.protocols else None
        baseline = registry.get("strategy", layout.baseline).name if layout.baseline else None
    except UsageError as exc:
        raise UsageError(f"[leaderboard]: {exc}") from None
    return replace(layout, protocols=protocols, baseline=baseline)


def resolve(study: Study, registry: Registry) -> Study:
    """The study with every grid resolved; its executor, device and leaderboard layout checked too."""
    labels = _labels(study)
    grids = tuple(resolve_grid(g, registry, where) for g, where in zip(study.grids, labels, strict=True))
    try:
        executor = registry.get("executor", study.executor).name
        device = device_of(study.device, "device") if study.device else None
        layout = resolve_layout(study.leaderboard, registry)
    except UsageError as exc:
        raise _prefixed(labels[0].split(", grid")[0], exc) from None
    return replace(study, grids=grids, executor=executor, device=device, leaderboard=layout)


def scheduled_strategies(registry: Registry) -> frozenset[str]:
    """The strategies that take a plane schedule: only their runs differ between a grid's schedules."""
    return frozenset(entry.name for entry in registry.entries("strategy") if entry.schedule)


def _plan_grid(grid: Grid, registry: Registry, data_root: str | None) -> list:
    """A grid's runs: one plain grid per (size, schedule) of it (:meth:`Grid.expanded`), each planned."""
    return [run for plain in grid.expanded() for run in _plan_plain(plain, registry, data_root)]


def _plan_plain(grid: Grid, registry: Registry, data_root: str | None) -> list:
    from liftbench.plugin.options import check_declared
    from liftbench.study.grid_runs import plan

    protocols = registry.resolve("protocol", grid.protocols)
    # protocols with their own options are planned one by one, each with its options on top of the grid's
    batches = [(protocols, dict(grid.options))]
    if grid.protocol_options:  # an option no protocol of the grid declares is an error, before the split hides it
        check_declared(dict(grid.options), {name for p in protocols for name in p.options}, f"protocol(s) {', '.join(p.name for p in protocols)}")
        batches = [
            (
                [p],
                {
                    **{k: v for k, v in grid.options.items() if k in p.options or k == "quick"},
                    **grid.protocol_options.get(p.name, {}),
                },
            )
            for p in protocols
        ]
    runs = []
    for chosen, options in batches:
        runs += plan(
            registry,
            datasets=registry.resolve("dataset", grid.datasets),
            backbones=registry.resolve("backbone", grid.backbones),
            strategies=registry.resolve("strategy", grid.strategies),
            protocols=chosen,
            seeds=list(grid.seeds),
            size=grid.size,
            weights=grid.weights,
            schedule=grid.schedule,
            options=options,
            dataset_options=dict(grid.dataset_options),
            data_root=data_root,
        )
    return runs


def plan_study(study: Study, registry: Registry, data_root: str | None = None) -> list:
    """Every run of a resolved study's grids, in grid order; a run two grids share is planned once. The data
    is read from ``data_root`` (else each dataset's own default place) to key runs by its content."""
    runs, seen = [], set()
    for grid, where in zip(study.grids, _labels(study), strict=True):
        try:
            planned = _plan_grid(grid, registry, data_root)
        except UsageError as exc:
            raise _prefixed(where, exc) from None
        for run in planned:
            if run.key not in seen:
                seen.add(run.key)
                runs.append(run)
    return runs


def count_runs(study: Study, registry: Registry) -> tuple[int | None, str]:
    """(planned runs, '') — or (None, why) when a name does not resolve (for ``liftbench list studies``)."""
    try:
        return resolve(study, registry).runs(scheduled_strategies(registry)), ""
    except UsageError as exc:
        return None, str(exc)


def merged(existing: Study | None, study: Study) -> Study:
    """What a results folder's ``study.toml`` becomes after ``study`` ran into it: the grids it already
    recorded that no new grid covers (a rerun with more seeds replaces the grid it extends), then the new ones
    (a folder filled by two commands records both). The folder keeps the ``results`` it names itself by, so
    rerunning its record from another directory does not rewrite it."""
    if existing is None:
        return study
    new = [g for g in study.grids if g not in existing.grids]
    kept = [g for g in existing.grids if not any(g.cells() <= n.cells() for n in new)]
    return replace(study, grids=tuple(kept + new), results=existing.results)


def _set_aside(path: Path) -> Path:
    """Move an unreadable record to ``study.toml.unreadable-<UTC time>`` beside it (never over another)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside, n = path.with_name(f"{path.name}.unreadable-{stamp}"), 2
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.unreadable-{stamp}-{n}"), n + 1
    path.rename(aside)
    return aside


def _warn(message: str) -> None:
    print(f"liftbench: warning: {message}", file=sys.stderr)


def record(study: Study, results_dir: Path, warn: Callable[[str], None] = _warn) -> Path:
    """Write the resolved study into ``results_dir/study.toml`` (atomically), merged with what is there.

    A record that cannot be read (not TOML, not UTF-8, not a study) is never overwritten: the grids it holds
    would be lost without a word. It is moved aside, byte for byte, and ``warn`` says where."""
    from liftbench.run.results import write_text_atomic
    from liftbench.study.toml_file import dumps

    path = Path(results_dir) / STUDY_FILE
    existing, old_text, problem = folder_study(results_dir)
    if existing is None and old_text is not None:
        aside = _set_aside(path)
        warn(f"{path} could not be read ({problem.splitlines()[0]}); kept it as {aside} and wrote a new one")
    text = dumps(replace(merged(existing, study), source=""))
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text_atomic(path, text)
    return path
