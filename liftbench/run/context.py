"""What a protocol receives (:class:`RunContext`) and returns (:class:`ProtocolResult`).

The context loads the dataset and the backbone lazily and keeps the last one of each in memory, so
a grid over strategies and seeds reads the data and builds the model once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from liftbench.backbones.timm_backbones import WeightsInfo, normalisation
from liftbench.checks import check_weights
from liftbench.datasets.volumes import VolumeDataset
from liftbench.plugin.registry import Registry
from liftbench.run.inputs import data_fingerprint, load_dataset, remember
from liftbench.run.spec import Resolved, RunSpec, resolve_spec


@dataclass
class ProtocolResult:
    """Metrics as (split, metric, value) rows, plus what the runner records beside them."""

    metrics: list[tuple[str, str, float]]
    selected_on: str = ""
    volumes_per_second: float | None = None
    probabilities: pd.DataFrame | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """A run's view of the harness.

    ``resolved`` is what planning resolved for the run (its entries, its typed options): the context reads it
    and never the registry's names again. A context made without it (a protocol called directly) resolves
    the spec once, here.
    """

    spec: RunSpec
    registry: Registry
    cache_dir: Path
    device: str = "cpu"
    data_root: str | None = None
    log: Callable[[str], None] = print
    refresh: bool = False  # --force: caches of this run's features are recomputed, not read
    resolved: Resolved | None = None

    def __post_init__(self) -> None:
        if self.resolved is None:
            self.resolved = resolve_spec(self.registry, self.spec)

    def detail(self, message: str) -> None:
        """A per-run detail (a cache hit, a selected step): logged at INFO on the ``liftbench.run`` logger, which
        ``liftbench run -v`` shows; warnings a user must see go to :attr:`log`."""
        logging.getLogger("liftbench.run").info(message)

    @property
    def options(self) -> dict[str, Any]:
        """The protocol's options as planning typed them: its declared defaults, overridden by the run's.
        ``dtype`` is the precision actually used on this device, never ``auto``."""
        from liftbench.precision import resolve_dtype

        options = dict(self.resolved.options)
        if "dtype" in options:
            options["dtype"] = resolve_dtype(options["dtype"], self.device, self.resolved.backbone.bf16)
        return options

    def dataset(self) -> VolumeDataset:
        """The run's dataset — the very data it was planned on: data that changed since the plan (a file
        replaced while a study ran, another data root on a cluster node) fails the run instead of being
        measured under the old data's key."""
        entry = self.resolved.dataset
        dataset = load_dataset(entry, self.spec.size, self.data_root, self.resolved.dataset_params)
        if self.spec.data:
            found = data_fingerprint(dataset)
            if found != self.spec.data:
                raise ValueError(f"dataset {entry.name!r} changed since the run was planned (its data fingerprint is "
                                 f"{found}, planned {self.spec.data}); plan the study again")  # fmt: skip
        return dataset

    def backbone(self, fresh: bool = False) -> tuple[torch.nn.Module, WeightsInfo]:
        """The 2D model in eval mode on the run's device. ``fresh`` builds a new one (fine-tuning)."""
        entry = self.resolved.backbone

        def build():
            model, info = entry.load()(self.spec.weights, **entry.options)
            check_weights(model, info.source, backbone=entry.name)
            return model.eval().to(self.device), info

        if fresh:
            return build()
        return remember("backbone", (entry.name, self.spec.weights, self.spec.weights_id, self.device), build)

    def lift(self, model: torch.nn.Module, **options: Any):
        """Lift ``model`` with the run's strategy and schedule (``options`` go to the lifter too: ``checkpoint``)."""
        from liftbench.api import lift_entry

        if self.spec.schedule:
            options = {"schedule": self.spec.schedule, **options}
        return lift_entry(self.resolved.strategy, model, family=self.resolved.backbone.family, **options)

    @contextmanager
    def lifted(self, model: torch.nn.Module | None = None) -> Iterator[Any]:
        """The lifted backbone for this run, unlifted again afterwards (CNN lifters patch layers)."""
        lifted = self.lift(model if model is not None else self.backbone()[0])
        try:
            yield lifted
        finally:
            lifted.unlift()

    def normalisation(self, model: torch.nn.Module):
        return normalisation(model)

    def features(self, split: str, *, dense: bool = False, batch_size: int = 4, dtype: str = "fp32") -> torch.Tensor:
        """Features of one split through the run's lifted backbone (eval mode, the backbone's own
        normalisation): pooled ``(N, D, E)``/``(N, E)``, or patch maps ``(N, E, d, h, w)`` if ``dense``.
        The public way for a protocol to get lifted features; float32 on the CPU, not cached."""
        from liftbench.api import extract

        model, _ = self.backbone()
        mean, std = self.normalisation(model)
        with self.lifted(model) as lifted:
            return extract(lifted, self.dataset().splits[split].volumes, mean, std, batch_size, self.device, dtype, dense=dense)
