"""Test helpers for plugin authors (and liftbench's own tests): a registry holding your plugin, tiny
backbones that build in milliseconds, and a whole grid run into a temporary folder.

    from liftbench.testing import registry_with, run_grid

    def test_my_strategy_runs(tmp_path):
        registry = registry_with(my_package.plugin)
        rows = run_grid(registry, tmp_path, strategies="mine,2d")
        assert set(rows["status"]) == {"ok"}

``run_grid`` goes through the same planner, runner and result files as ``liftbench run``, so what it
returns is what a user would find in their results folder; ``run_study`` does the same for a registered
study (or a :class:`liftbench.study.model.Study`), with its grids' fields changed for a test
(``backbones=("tiny-vit",)``), and records it in the folder's ``study.toml`` as ``liftbench run`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from liftbench import hookimpl
from liftbench.plugin.registry import Registry
from liftbench.study.model import registered_study

# Small enough to build and run in a test; random-init DINOv3 architecture (head_dim 64, CLS + 4 registers).
TINY_VIT = {"model_name": "vit_small_patch16_dinov3", "global_pool": "token", "depth": 2, "embed_dim": 64, "num_heads": 1}
TINY_CNN = {"model_name": "resnet10t"}
TINY_DATA = {"n_train": 9, "n_val": 6, "n_test": 6}
FAST_PROBE = {"iterations": 6, "warmup": 1, "batch_size": 3}


class TinyBackbones:
    """A plugin registering ``tiny-vit`` and ``tiny-cnn`` (timm architectures, random weights only)."""

    @hookimpl
    def liftbench_register_backbones(self, registrar):
        registrar.add("tiny-vit", "liftbench.backbones.timm_backbones:create_timm_backbone", family="vit", options=TINY_VIT,
                      description="2-block DINOv3-architecture ViT for tests (use --weights random)")  # fmt: skip
        registrar.add("tiny-cnn", "liftbench.backbones.timm_backbones:create_timm_backbone", family="cnn", options=TINY_CNN,
                      description="timm resnet10t for tests (use --weights random)")  # fmt: skip


def _named(plugin: Any) -> tuple[str, Any]:
    if isinstance(plugin, tuple):
        return plugin
    return getattr(plugin, "__name__", type(plugin).__name__), plugin


def registry_with(*plugins: Any, tiny_backbones: bool = True, disabled: Sequence[str] = ()) -> Registry:
    """The installed plugins plus ``plugins`` (modules, objects, or ``(name, plugin)`` pairs) and, unless
    told not to, :class:`TinyBackbones`."""
    from liftbench.plugin.manager import build_registry

    extra = [_named(p) for p in plugins] + ([("liftbench-testing-tiny-backbones", TinyBackbones())] if tiny_backbones else [])
    return build_registry(disabled=disabled, extra=extra)


def run_grid(
    registry: Registry,
    folder: Path,
    *,
    datasets: str = "synthetic",
    backbones: str = "tiny-vit",
    strategies: str = "2d",
    protocols: str = "linear",
    seeds: Sequence[int] = (0,),
    size: int = 32,
    weights: str = "random",
    options: Mapping[str, Any] | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    executor: str = "local",
    executor_options: Mapping[str, Any] | None = None,
    schedule: str | None = None,
    data_root: str | None = None,
    force: bool = False,
):
    """Plan and run a grid into ``folder/results`` (feature cache in ``folder/cache``); returns the rows
    of every result file as a DataFrame. ``options`` default to a fast probe, ``dataset_options`` to a
    tiny synthetic set; ``data_root`` is where file-based datasets are read; ``force`` reruns what is done."""
    from liftbench.run.results import read_results
    from liftbench.run.runner import ExecutionContext, execute
    from liftbench.study.grid_runs import plan

    folder = Path(folder)
    protocol_entries = registry.resolve("protocol", protocols)
    if options is None:
        declared = {name for p in protocol_entries for name in p.options}
        options = {k: v for k, v in FAST_PROBE.items() if k in declared}
    if dataset_options is None:
        dataset_options = TINY_DATA if datasets == "synthetic" else {}
    runs = plan(
        registry, datasets=registry.resolve("dataset", datasets), backbones=registry.resolve("backbone", backbones),
        strategies=registry.resolve("strategy", strategies), protocols=protocol_entries, seeds=seeds, size=size,
        weights=weights, schedule=schedule, options=dict(options), dataset_options=dict(dataset_options),
        data_root=data_root,
    )  # fmt: skip
    ctx = ExecutionContext(registry=registry, results_dir=folder / "results", cache_dir=folder / "cache",
                           data_root=data_root, log=lambda _: None, refresh_caches=force,
                           executor_options={**(executor_options or {}), "force": force})  # fmt: skip
    execute(runs, registry.get("executor", executor), ctx, force=force)
    return read_results(folder / "results").frame


def run_study(registry: Registry, folder: Path, study: Any, **grid_changes: Any):
    """Run a study (a registered name or a :class:`liftbench.study.model.Study`) into ``folder/results`` with the
    feature cache in ``folder/cache``; ``grid_changes`` replace fields of every grid (``seeds=(0,)``).
    Returns the rows of every result file as a DataFrame."""
    from dataclasses import replace

    from liftbench.run.results import read_results
    from liftbench.run.runner import ExecutionContext, execute
    from liftbench.study.plan import plan_study, record, resolve

    folder = Path(folder)
    chosen = registered_study(registry.get("study", study)) if isinstance(study, str) else study
    chosen = resolve(replace(chosen.with_grids(**grid_changes), results=str(folder / "results")), registry)
    runs = plan_study(chosen, registry)
    ctx = ExecutionContext(registry=registry, results_dir=folder / "results", cache_dir=folder / "cache",
                           log=lambda _: None, executor_options=dict(chosen.executor_options))  # fmt: skip
    record(chosen, folder / "results")
    execute(runs, registry.get("executor", chosen.executor), ctx)
    return read_results(folder / "results").frame
