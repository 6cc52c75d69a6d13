"""A plain grid's runs: dataset x backbone x strategy x protocol x seed, each keyed by what its inputs hold.

Planning loads every dataset and locates every weights file (:mod:`liftbench.run.inputs`), casts every option
to its declared type and checks it, and decides which pairs are skipped before anything runs (ACS on a ViT, a
mask protocol on a dataset without masks). What it returns is all a run needs (:mod:`liftbench.run.spec`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from liftbench.errors import UsageError
from liftbench.lifting.planes import parse_schedule, schedule_text
from liftbench.plugin.entries import BackboneEntry, DatasetEntry, Entry, ProtocolEntry, StrategyEntry
from liftbench.plugin.options import check_declared, resolve
from liftbench.plugin.registry import Registry
from liftbench.run.inputs import data_fingerprint, forget, load_dataset, weights_identity
from liftbench.run.spec import PlannedRun, Resolved, RunSpec


def lift_skip_reason(backbone: BackboneEntry, strategy: StrategyEntry, chosen: Sequence[str]) -> str:
    """Why ``strategy`` is not run on ``backbone`` when the grid holds strategies ``chosen`` ('' = run it)."""
    family = backbone.family
    if family not in strategy.families:
        return f"strategy {strategy.name!r} cannot lift a {family} backbone ({backbone.name}); it lifts: {', '.join(strategy.families)}"
    twin = strategy.same_as.get(family)
    if twin and twin in chosen:
        return f"{strategy.name} is identical to {twin} for a {family} backbone: run once, as {twin}"
    return ""


def _skip_reason(dataset: DatasetEntry, backbone: BackboneEntry, strategy: StrategyEntry, protocol: ProtocolEntry, strategies: Sequence[StrategyEntry]) -> str:
    reason = lift_skip_reason(backbone, strategy, [s.name for s in strategies])
    if not reason and protocol.needs_masks and not dataset.has_masks:
        reason = f"protocol {protocol.name!r} needs lesion masks, which dataset {dataset.name!r} does not provide"
    if not reason and (backbone.family, strategy.name) in protocol.refuses:
        reason = f"protocol {protocol.name!r} does not run on {strategy.name} ({backbone.family}): {protocol.refuses[backbone.family, strategy.name]}"
    if not reason and protocol.needs_labels and not dataset.has_labels:
        reason = f"protocol {protocol.name!r} needs class labels; dataset {dataset.name!r} is segmentation-only"
    return reason


DEFAULT_SIZE = 64


def size_for(dataset: DatasetEntry, size: int | None) -> int:
    """The input size of ``dataset`` in a grid: the user's, else the dataset's default (else 64), checked
    against the sizes it offers."""
    chosen = int(size) if size is not None else (dataset.default_size or DEFAULT_SIZE)
    if dataset.sizes and chosen not in dataset.sizes:
        raise UsageError(f"dataset {dataset.name!r} has no size {chosen}; valid sizes: {', '.join(map(str, dataset.sizes))}")
    return chosen


def _schedule_for(strategy: StrategyEntry, schedule: str | None) -> str:
    """The user's schedule (or the strategy's default one) for strategies that take one, else ''."""
    return (schedule or strategy.schedule) if strategy.schedule else ""


def options_per_protocol(protocols: Sequence[ProtocolEntry], options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each protocol's resolved options: its declared defaults (and ``quick`` preset), overridden by the
    given options it declares, cast to their types. These key its runs, so a changed default reruns
    them. An option no selected protocol declares is a user mistake, caught before anything runs."""
    check_declared(options, {name for p in protocols for name in p.options}, f"protocol(s) {', '.join(p.name for p in protocols)}")
    return {
        p.name: resolve(p.options, {k: v for k, v in options.items() if k in p.options or k == "quick"}, owner=f"protocol {p.name!r}", quick=p.quick)
        for p in protocols
    }


def dataset_parameters(dataset: DatasetEntry, given: dict[str, Any]) -> dict[str, Any]:
    """The dataset options a user set that ``dataset`` declares, cast to their types (all, as text, for a
    dataset that declares none)."""
    if dataset.parameters is None:
        return dict(given)
    mine = {k: v for k, v in given.items() if k in dataset.parameters}
    return {k: v for k, v in resolve(dataset.parameters, mine, owner=f"dataset {dataset.name!r}").items() if k in mine}


def check_dataset_options(datasets: Sequence[DatasetEntry], given: dict[str, Any]) -> None:
    """A dataset option no selected dataset declares is a user mistake (like a protocol option); one that
    some declare applies to those (``featdice_size`` to LIDC in a LIDC + MMWHS grid)."""
    if any(d.parameters is None for d in datasets):
        return
    declared = {name for d in datasets for name in d.parameters}
    check_declared(given, declared, f"dataset(s) {', '.join(d.name for d in datasets)}", what="dataset option")


def providers(**entries: Entry) -> str:
    """JSON of kind -> providing plugin and version: recorded in rows, and part of the run key, so a
    plugin upgrade reruns what it provides."""
    return json.dumps({kind: entry.provider for kind, entry in entries.items()}, sort_keys=True)


def plan(
    registry: Registry,
    *,
    datasets: Sequence[Entry],
    backbones: Sequence[Entry],
    strategies: Sequence[Entry],
    protocols: Sequence[Entry],
    seeds: Sequence[int],
    size: int | None,
    weights: str,
    schedule: str | None = None,
    options: dict[str, Any] | None = None,
    dataset_options: dict[str, Any] | None = None,
    data_root: str | None = None,
) -> list[PlannedRun]:
    """Every run of the grid, in an order that keeps caches warm (seeds innermost). ``size`` None: each
    dataset's default size. Every dataset is loaded and every weights file located here, so a run is keyed by
    what its inputs hold (:mod:`liftbench.run.inputs`) and a missing or bad file stops the plan before any run."""
    sched = schedule_text(parse_schedule(schedule)) if schedule else None
    typed = options_per_protocol(protocols, options or {})
    per_protocol = {name: json.dumps(opts, sort_keys=True) for name, opts in typed.items()}
    check_dataset_options(datasets, dataset_options or {})
    data_params = {d.name: dataset_parameters(d, dataset_options or {}) for d in datasets}
    data_opts = {name: json.dumps(params, sort_keys=True) for name, params in data_params.items()}
    sizes = {dataset.name: size_for(dataset, size) for dataset in datasets}
    weights_ids = {backbone.name: weights_identity(backbone, weights) for backbone in backbones}
    forget("dataset")  # the data as it is now, not as an earlier plan in this process read it
    data_ids = {d.name: data_identity(d, sizes[d.name], data_root, data_params[d.name]) for d in datasets}
    runs = []
    for dataset in datasets:
        for backbone in backbones:
            for strategy in strategies:
                for protocol in protocols:
                    reason = _skip_reason(dataset, backbone, strategy, protocol, strategies)
                    provided = providers(strategy=strategy, backbone=backbone, dataset=dataset, protocol=protocol)
                    resolved = Resolved(dataset, backbone, strategy, protocol, typed[protocol.name], data_params[dataset.name])
                    for seed in seeds:
                        spec = RunSpec(
                            dataset=dataset.name, size=sizes[dataset.name], backbone=backbone.name, weights=weights,
                            strategy=strategy.name, schedule=_schedule_for(strategy, sched),
                            protocol=protocol.name, seed=int(seed), options=per_protocol[protocol.name],
                            dataset_options=data_opts[dataset.name],
                            providers=provided, data=data_ids[dataset.name], weights_id=weights_ids[backbone.name],
                        )
                        runs.append(PlannedRun(spec, reason, resolved))
    return runs


def data_identity(dataset: DatasetEntry, size: int, data_root: str | None, params: dict[str, Any]) -> str:
    """The data fingerprint of ``dataset`` as a run would load it (the load is kept for the first runs)."""
    return data_fingerprint(load_dataset(dataset, size, data_root, params))
