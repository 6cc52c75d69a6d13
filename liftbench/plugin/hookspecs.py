"""The hooks a liftbench plugin implements.

A plugin is any importable module (or object) exposed through the ``liftbench`` entry-point group of
an installed distribution::

    [project.entry-points.liftbench]
    my-plugin = "my_package.liftbench_plugin"

and implementing one or more of the hooks below with :data:`liftbench.hookimpl`. Every hook is a
*registrar*: it receives a registrar object and calls ``registrar.add(...)`` once per thing it
provides. The signatures live in one place, the registrar classes of :mod:`liftbench.plugin.registry`, and
the fields they fill in one other, the typed entries of :mod:`liftbench.plugin.entries`; this page points at
them rather than restating them. Options a plugin's protocols or executors take are declared there
too (:class:`liftbench.Option`), which gives them command-line flags grouped under the plugin. Registrations are lazy: they name their implementation as a ``"module:attr"`` string, and
liftbench imports it only when a run selects it, so ``liftbench list`` stays instant and a broken
heavy dependency only hurts the runs that need it.

The built-in plugins (``liftbench_plugins``) go through exactly this path; read them as examples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from liftbench.plugin.registry import (
        BackboneRegistrar,
        DatasetRegistrar,
        ExecutorRegistrar,
        ProtocolRegistrar,
        StrategyRegistrar,
        StudyRegistrar,
    )

hookspec = pluggy.HookspecMarker("liftbench")


@hookspec
def liftbench_register_strategies(registrar: StrategyRegistrar) -> None:
    """Register lifting strategies: ways to run a 2D backbone on ``(B, C, D, H, W)`` volumes.

    :param registrar: call :meth:`StrategyRegistrar.add <liftbench.plugin.registry.StrategyRegistrar.add>` once
        per strategy; its fields are documented on :class:`liftbench.plugin.entries.StrategyEntry`.

    A lifter builds a :class:`liftbench.lifting.Lifted` whose forward returns
    :class:`liftbench.lifting.features.Features`; both are checked, naming the plugin when broken.
    A backbone whose family the strategy does not lift is a skipped run with the reason, not a crash.
    """


@hookspec
def liftbench_register_backbones(registrar: BackboneRegistrar) -> None:
    """Register backbones: pretrained 2D networks a strategy can lift.

    :param registrar: call :meth:`BackboneRegistrar.add <liftbench.plugin.registry.BackboneRegistrar.add>` once
        per backbone; fields on :class:`liftbench.plugin.entries.BackboneEntry`.

    The target is ``create(weights, **options) -> (model, WeightsInfo)``; ``weights`` is ``pretrained``,
    ``random[:SEED]`` or a file path (helpers in :mod:`liftbench.backbones.timm_backbones`). A missing file raises
    :class:`liftbench.errors.MissingFileError` saying where to put it; never fall back to random weights.
    """


@hookspec
def liftbench_register_datasets(registrar: DatasetRegistrar) -> None:
    """Register volume datasets.

    :param registrar: call :meth:`DatasetRegistrar.add <liftbench.plugin.registry.DatasetRegistrar.add>` once
        per dataset; fields on :class:`liftbench.plugin.entries.DatasetEntry`.

    The target is ``load(size, data_root, **options) -> liftbench.datasets.volumes.VolumeDataset``.
    """


@hookspec
def liftbench_register_protocols(registrar: ProtocolRegistrar) -> None:
    """Register evaluation protocols (linear probe, fine-tune, zero-training metrics, ...).

    :param registrar: call :meth:`ProtocolRegistrar.add <liftbench.plugin.registry.ProtocolRegistrar.add>` once
        per protocol; fields (declared options, quick preset) on :class:`liftbench.plugin.entries.ProtocolEntry`.

    The target is ``run(ctx: liftbench.protocols.RunContext) -> liftbench.protocols.ProtocolResult``;
    ``ctx.options`` holds its declared options, resolved. The runner owns keys, resuming, timing,
    provenance and writing, so a protocol only computes metrics (and notes, recorded in each row).
    """


@hookspec
def liftbench_register_executors(registrar: ExecutorRegistrar) -> None:
    """Register executors: where the runs of a grid execute (this process, a cluster, ...).

    :param registrar: call :meth:`ExecutorRegistrar.add <liftbench.plugin.registry.ExecutorRegistrar.add>` once
        per executor; fields (declared options: ``--<executor>-<option>`` flags) on
        :class:`liftbench.plugin.entries.ExecutorEntry`.

    The target is ``execute(runs: list[liftbench.run.spec.PlannedRun], ctx: liftbench.run.runner.ExecutionContext)``;
    it must make every run's result file appear in the results folder, by calling ``ctx.run_one(run)``
    wherever the run executes; ``ctx.executor_options`` holds its options.
    """


@hookspec
def liftbench_register_studies(registrar: StudyRegistrar) -> None:
    """Register studies: named grids (with the leaderboard layout to read them in) that ``liftbench run
    --study NAME`` runs and ``liftbench list studies`` shows.

    :param registrar: call :meth:`StudyRegistrar.add <liftbench.plugin.registry.StudyRegistrar.add>` once per
        study; fields on :class:`liftbench.plugin.entries.StudyEntry`.

    The target is a study TOML file shipped with the plugin (``"my_package:studies/mine.toml"``); the file
    format is in ``docs/studies.md``. Its names are checked only when the study is run, so a study may use
    what other plugins register.
    """
