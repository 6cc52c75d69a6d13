"""A run's identity and its place in a plan.

:class:`RunSpec` is everything that defines one run; its hash is the run key, which names the result file,
so a run is done once. :class:`PlannedRun` is a spec as planning left it (with the reason it is skipped,
if it is); :func:`group_runs` groups the runs that share one feature extraction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from liftbench.plugin.entries import BackboneEntry, DatasetEntry, ProtocolEntry, StrategyEntry
from liftbench.plugin.registry import Registry

KEY_VERSION = 3  # bump when the meaning of a run's key changes (2: resolved options, providers; 3: inputs by content)


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run; its hash is the run key."""

    dataset: str
    size: int
    backbone: str
    weights: str
    strategy: str
    schedule: str
    protocol: str
    seed: int
    options: str = "{}"  # JSON, sorted keys: the protocol's options, resolved (defaults included)
    dataset_options: str = "{}"  # JSON, sorted keys: dataset options the user set, cast to their types
    providers: str = "{}"  # JSON: kind -> "plugin (distribution version)" of strategy, backbone, dataset, protocol
    data: str = ""  # the data's content: liftbench.run.inputs.data_fingerprint of the dataset as planned
    weights_id: str = ""  # the weights' content: liftbench.run.inputs.weights_identity (random:SEED or sha256:...)

    def key(self) -> str:
        payload = json.dumps({"v": KEY_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]

    @property
    def protocol_options(self) -> dict[str, Any]:
        return json.loads(self.options)

    @property
    def data_options(self) -> dict[str, Any]:
        return json.loads(self.dataset_options)

    def label(self) -> str:
        sched = f"[{self.schedule}]" if self.schedule else ""
        return f"{self.dataset}@{self.size} {self.backbone} {self.strategy}{sched} {self.protocol} seed={self.seed}"


@dataclass(frozen=True, eq=False)
class Resolved:
    """What planning resolved for a run: its registered entries and its options cast to their declared types.

    Planning makes it once (:func:`liftbench.study.grid_runs.plan`); the runner, the run's context and the row
    builder read it, so nothing after planning looks a name up in the registry or casts an option again.
    """

    dataset: DatasetEntry
    backbone: BackboneEntry
    strategy: StrategyEntry
    protocol: ProtocolEntry
    options: Mapping[str, Any]  # the protocol's options, typed, defaults included (spec.options as JSON)
    dataset_params: Mapping[str, Any]  # the dataset options the user set, typed (spec.dataset_options as JSON)


def resolve_spec(registry: Registry, spec: RunSpec) -> Resolved:
    """A spec's entries and typed options from its canonical names: for a run that reached this process as its spec
    alone (a Slurm worker on another node, a protocol called directly), the one place that happens."""
    from liftbench.plugin.options import resolve

    protocol = registry.get("protocol", spec.protocol)
    options = resolve(protocol.options, spec.protocol_options, owner=f"protocol {protocol.name!r}", quick=protocol.quick)
    return Resolved(
        dataset=registry.get("dataset", spec.dataset), backbone=registry.get("backbone", spec.backbone),
        strategy=registry.get("strategy", spec.strategy), protocol=protocol, options=options,
        dataset_params=spec.data_options,
    )  # fmt: skip


@dataclass
class PlannedRun:
    """A run as planning left it: its spec, why it is skipped ('' = it runs), and what was resolved for it."""

    spec: RunSpec
    skip_reason: str = ""
    resolved: Resolved | None = field(default=None, compare=False, repr=False)

    def resolve(self, registry: Registry) -> Resolved:
        """:attr:`resolved`, from the registry only where the run came without it (:func:`resolve_spec`)."""
        if self.resolved is None:
            self.resolved = resolve_spec(registry, self.spec)
        return self.resolved

    @property
    def key(self) -> str:
        return self.spec.key()


def group_key(spec) -> tuple:
    """What a feature cache depends on: runs with the same key share one extraction (one Slurm array task,
    one group of the dry-run estimate)."""
    return (spec.dataset, spec.size, spec.dataset_options, spec.data, spec.backbone, spec.weights, spec.weights_id,
            spec.strategy, spec.schedule)  # fmt: skip


def group_runs(runs: Sequence[PlannedRun]) -> list[list[PlannedRun]]:
    """Runs grouped by :func:`group_key`, groups and runs in grid order."""
    groups: dict[tuple, list] = {}
    for run in runs:
        groups.setdefault(group_key(run.spec), []).append(run)
    return list(groups.values())
