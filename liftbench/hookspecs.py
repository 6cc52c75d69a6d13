"""The hooks a liftbench plugin implements.

A plugin is any importable module (or object) exposed through the ``liftbench`` entry-point group of
an installed distribution::

    [project.entry-points.liftbench]
    my-plugin = "my_package.liftbench_plugin"

and implementing one or more of the hooks below with :data:`liftbench.hookimpl`. Every hook is a
*registrar*: it receives a registrar object and calls ``registrar.add(...)`` once per thing it
provides. Registrations are lazy: they name their implementation as a ``"module:attr"`` string, and
liftbench imports it only when a run selects it, so ``liftbench list`` stays instant and a broken
heavy dependency only hurts the runs that need it.

The built-in plugins (``liftbench_plugins``) go through exactly this path; read them as examples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from liftbench.registry import (
        BackboneRegistrar,
        DatasetRegistrar,
        ExecutorRegistrar,
        ProtocolRegistrar,
        StrategyRegistrar,
    )

hookspec = pluggy.HookspecMarker("liftbench")


@hookspec
def liftbench_register_strategies(registrar: StrategyRegistrar) -> None:
    """Register lifting strategies: ways to run a 2D backbone on ``(B, C, D, H, W)`` volumes.

    Call ``registrar.add(name, lifters={family: "module:attr", ...}, aliases=..., description=...,
    defaults=...)``. ``lifters`` maps each backbone family the strategy can lift (``"vit"``, ``"cnn"``)
    to a callable ``lifter(model, **options) -> liftbench.lifting.Lifted``. A backbone whose family is
    missing from ``lifters`` is recorded as a skipped run with the reason, not a crash. ``defaults`` are
    options passed to the lifter unless the user overrides them (e.g. ``{"pooling": "adaptive"}``).
    """


@hookspec
def liftbench_register_backbones(registrar: BackboneRegistrar) -> None:
    """Register backbones: pretrained 2D networks a strategy can lift.

    Call ``registrar.add(name, target="module:attr", family="vit"|"cnn", aliases=..., description=...,
    options=...)``. ``target`` is ``create(weights: str, **options) -> (torch.nn.Module, WeightsInfo)``,
    where ``weights`` is ``"pretrained"``, ``"random"`` or a local file path, and
    :class:`liftbench.backbones.WeightsInfo` records the weights' source and sha256 in every result row.
    A missing file must raise :class:`liftbench.errors.MissingFileError` saying where to put it.
    """


@hookspec
def liftbench_register_datasets(registrar: DatasetRegistrar) -> None:
    """Register volume datasets.

    Call ``registrar.add(name, target="module:attr", aliases=..., description=..., sizes=(28, 64),
    has_masks=False)``. ``target`` is ``load(size: int, data_root: str | None, **options) ->
    liftbench.data.VolumeDataset`` returning train/val/test splits of ``(N, 1, D, H, W)`` volumes with
    intensities in [0, 1] (or uint8), integer labels and, where ``has_masks``, lesion masks.
    """


@hookspec
def liftbench_register_protocols(registrar: ProtocolRegistrar) -> None:
    """Register evaluation protocols (linear probe, fine-tune, zero-training metrics, ...).

    Call ``registrar.add(name, target="module:attr", aliases=..., description=...)``. ``target`` is
    ``run(ctx: liftbench.protocols.RunContext) -> liftbench.protocols.ProtocolResult``; the runner
    handles keys, resuming, timing, provenance and writing, so a protocol only computes metrics.
    """


@hookspec
def liftbench_register_executors(registrar: ExecutorRegistrar) -> None:
    """Register executors: where the runs of a grid execute (this process, a cluster, ...).

    Call ``registrar.add(name, target="module:attr", aliases=..., description=...)``. ``target`` is
    ``execute(runs: list[liftbench.runner.PlannedRun], ctx: liftbench.runner.ExecutionContext) -> None``;
    it must make every run's result file appear in the results folder (by calling
    ``ctx.run_one(run)`` wherever the run executes).
    """
