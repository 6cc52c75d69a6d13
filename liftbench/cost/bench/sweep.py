"""The benchmark sweep: every (backbone, strategy, volume size, batch) measured, one Parquet file each.

Each configuration is measured in one process, one after another, so the numbers share a machine
state; the matmul peak is measured just before each configuration's timing, so a neighbour's load
affects the peak and the measurement alike. A strategy that cannot lift a backbone (ACS on a ViT, or
PCm on a CNN when PCg is also requested: they are identical there) is recorded as skipped; a
configuration that runs out of memory is recorded as failed with error ``"out of memory"``, and any
other error as failed with its message — the sweep goes on in every case. The backbone is built
once per backbone and lifted anew per strategy (``unlift`` restores it), so strategies share weights.

With ``seg`` set the measured call is a segmentation training step (:mod:`.segstep`), recorded under
protocol ``bench-seg-frozen`` or ``bench-seg-finetune`` with the head's parameter count and the memory held
between steps as extra metrics. ``checkpoint`` lifts with activation checkpointing where the lifter has it
(the ViT lifters); the row's options say whether it was applied.

With ``train`` and ``lora_rank`` > 0 the step trains LoRA adapters of that rank (peft, alpha 2·rank, the
``lora`` protocol's ``auto`` targets) on the frozen backbone instead of every parameter (protocol
``bench-train-lora``), so ``liftbench bench --train`` and ``--train --lora 8`` measure full fine-tuning and
LoRA at the same settings. Train rows also record ``trainable_parameters`` and ``optimizer_state_mb`` (AdamW's
moments) and ``state_memory_mb`` (parameters, gradients and moments held between steps).
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import json
import traceback
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from liftbench.api import backbone_family, lift_with
from liftbench.cost.bench.flops import count_flops
from liftbench.cost.bench.measure import is_out_of_memory, matmul_peak_gflops, peak_memory_mb, time_call
from liftbench.errors import CannotLiftError
from liftbench.plugin.registry import Entry, Registry
from liftbench.run.provenance import now, provenance
from liftbench.run.results import write_run
from liftbench.study.grid_runs import lift_skip_reason

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class BenchSettings:
    """What is swept besides backbone and strategy, and how carefully it is measured."""

    sizes: tuple[int, ...] = (32, 64)
    batches: tuple[int, ...] = (1,)
    device: str = "cpu"
    dtype: str = "fp32"
    train: bool = False
    warmup: int = 2
    repeats: int = 5
    weights: str = "random"
    matmul_n: int = 2048
    seg: str = ""  # "", "frozen" or "finetune": a segmentation training step instead
    seg_classes: int = 6
    checkpoint: bool = False
    lora_rank: int = 0  # with train: LoRA adapters of this rank instead of full fine-tuning (0: full)

    @property
    def protocol(self) -> str:
        if self.seg:
            return f"bench-seg-{self.seg}"
        return ("bench-train-lora" if self.lora_rank else "bench-train") if self.train else "bench-forward"

    @property
    def backbone_mode(self) -> str:
        return "train" if self.train or self.seg == "finetune" else "eval"

    def options(self) -> dict[str, Any]:
        """What goes into each row's ``options`` (besides the batch); seg and checkpoint fields only when used,
        so forward and train rows keep the options (and keys) they always had."""
        left_out = ("sizes", "batches", "device", "weights", "seg", "seg_classes", "checkpoint", "lora_rank")
        options = {k: v for k, v in asdict(self).items() if k not in left_out}
        if self.seg:
            options.update(seg=self.seg, seg_classes=self.seg_classes)
        if self.lora_rank:
            options.update(lora_rank=self.lora_rank)
        return options


def bench_key(backbone: str, strategy: str, size: int, batch: int, settings: BenchSettings) -> str:
    """The result file's name: a hash of what defines the configuration (not of how often it is timed)."""
    spec = {"kind": "bench", "backbone": backbone, "strategy": strategy, "size": size, "batch": batch,
            "device": settings.device, "dtype": settings.dtype, "train": settings.train, "weights": settings.weights}
    if settings.seg:
        spec.update(seg=settings.seg, seg_classes=settings.seg_classes)
    if settings.checkpoint:
        spec["checkpoint"] = True
    if settings.lora_rank:
        spec["lora_rank"] = settings.lora_rank
    return "bench-" + hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def make_step(lifted: torch.nn.Module, volumes: torch.Tensor, settings: BenchSettings) -> Callable[[], Any]:
    """One measured call: a forward under ``no_grad``, or forward + backward + AdamW step with ``train``.

    Training steps change the (random) weights a little; time, memory and FLOPs do not depend on their values.
    """
    device_type = torch.device(settings.device).type
    cast = torch.autocast(device_type, dtype=DTYPES[settings.dtype]) if settings.dtype != "fp32" else nullcontext()
    if not settings.train:
        lifted.eval()

        def forward() -> Any:
            with torch.no_grad(), cast:
                return lifted(volumes)

        return forward
    lifted.train()
    optimizer = torch.optim.AdamW([p for p in lifted.parameters() if p.requires_grad], lr=1e-6)

    def train_step() -> None:
        with cast:
            features = lifted(volumes)
        loss = features.pooled.float().mean() + features.patches.float().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    train_step.optimizer = optimizer  # read by train_sizes
    return train_step


def train_sizes(lifted: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """What a training step holds between steps: trainable parameters, AdamW's moments (``optimizer_state_mb``)
    and parameters + gradients + moments (``state_memory_mb``); call after a step (moments exist then)."""
    moments = sum(t.numel() * t.element_size() for state in optimizer.state.values() for key, t in state.items()
                  if isinstance(t, torch.Tensor) and key != "step")  # fmt: skip (AdamW's step counters are scalars)
    params = list(lifted.parameters())
    held = sum(p.numel() * p.element_size() for p in params) + moments
    held += sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    return {"trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
            "optimizer_state_mb": moments / 2**20, "state_memory_mb": held / 2**20}  # fmt: skip


def measure(lifted: torch.nn.Module, size: int, batch: int, settings: BenchSettings) -> dict[str, float]:
    """Every metric of one configuration (see the module docstring for the method)."""
    gen = torch.Generator().manual_seed(0)
    volumes = torch.randn(batch, 1, size, size, size, generator=gen).to(settings.device)
    sizes: Callable[[], dict[str, float]] = dict
    if settings.seg:
        from liftbench.cost.bench.segstep import (
            make_seg_step,  # here: it imports MONAI (~2.6 s), which --seg alone needs
        )

        step, sizes = make_seg_step(
            lifted, volumes, settings.seg, settings.seg_classes, settings.dtype, settings.device
        )
    else:
        step = make_step(lifted, volumes, settings)
        if settings.train:
            sizes = lambda: train_sizes(lifted, step.optimizer)  # noqa: E731
    flops = count_flops(step)  # also the first warm-up call
    memory = peak_memory_mb(step, settings.device)
    peak = matmul_peak_gflops(settings.device, DTYPES[settings.dtype], n=settings.matmul_n)
    timing = time_call(step, settings.device, warmup=settings.warmup, repeats=settings.repeats)
    seconds = timing.median_ms / 1000.0
    achieved = flops / seconds / 1e9
    return {
        "latency_ms_median": timing.median_ms, "latency_ms_iqr": timing.iqr_ms,
        "latency_ms_min": timing.min_ms, "latency_ms_max": timing.max_ms,
        "volumes_per_second": batch / seconds, "peak_memory_mb": memory,
        "gflops_per_volume": flops / batch / 1e9, "achieved_gflops": achieved,
        "achieved_fraction_of_matmul_peak": achieved / peak, "matmul_peak_gflops": peak, **sizes(),
    }


def lift_options(registry: Registry, model: torch.nn.Module, strategy: str, checkpoint: bool) -> dict[str, Any]:
    """``{"checkpoint": True}`` when asked for and the strategy's lifter for this model takes it, else ``{}``."""
    if not checkpoint:
        return {}
    entry = registry.get("strategy", strategy)
    family = backbone_family(model)
    if family in entry.families and "checkpoint" in inspect.signature(entry.load(family)).parameters:
        return {"checkpoint": True}
    return {}


def _cleanup(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def run_sweep(
    registry: Registry,
    backbones: Sequence[Entry],
    strategies: Sequence[Entry],
    settings: BenchSettings,
    results_dir: Path,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Measure every configuration, write ``<results_dir>/<key>.parquet`` for each; return all rows."""
    chosen = [s.name for s in strategies]
    options = settings.options()
    all_rows: list[dict[str, Any]] = []
    for backbone in backbones:
        torch.manual_seed(0)
        model, weights = backbone.load()(settings.weights, **backbone.options)
        model = model.to(settings.device)
        if settings.train and settings.lora_rank:
            from liftbench.protocols.adapters import attach_lora

            attach_lora(model, backbone.family, rank=settings.lora_rank, alpha=2.0 * settings.lora_rank)
        for strategy in strategies:
            reason, lifted, extra_options = lift_skip_reason(backbone, strategy, chosen), None, {}
            if not reason and settings.train and settings.lora_rank:
                from liftbench.protocols.adapters import lora_refusal

                reason = lora_refusal(backbone.family, strategy.name)
            if not reason:
                try:
                    extra_options = lift_options(registry, model, strategy.name, settings.checkpoint)
                    lifted = lift_with(registry, model, strategy.name, **extra_options)
                except CannotLiftError as exc:
                    reason = str(exc)
            described = lifted.describe() if lifted is not None else {"schedule": "", "pooling": ""}
            for size in settings.sizes:
                for batch in settings.batches:
                    key = bench_key(backbone.name, strategy.name, size, batch, settings)
                    base = {
                        "run_key": key, "kind": "bench", "source": "measured", "citation": "", "dataset": "",
                        "input_size": size, "backbone": backbone.name,
                        "backbone_model": backbone.architecture,
                        "weights": weights.source, "weights_sha256": weights.sha256, "strategy": strategy.name,
                        "schedule": described.get("schedule", ""), "pooling": described.get("pooling", ""),
                        "backbone_mode": settings.backbone_mode, "protocol": settings.protocol,
                        "seed": 0, "split": "",
                        "options": json.dumps({**options, **extra_options, "batch": batch}, sort_keys=True),
                        "created_at": now(), **provenance(settings.device),
                    }
                    label = f"{backbone.name} {strategy.name} {size}^3 batch {batch}"
                    if reason:
                        rows = [{**base, "status": "skipped", "error": reason}]
                        log(f"{label}: skipped ({reason})")
                    else:
                        rows = _measure_rows(lifted, size, batch, settings, base, label, log)
                    write_run(results_dir, key, rows)
                    all_rows.extend(rows)
            if lifted is not None:
                model = lifted.unlift()
            del lifted
            _cleanup(settings.device)
        del model
        _cleanup(settings.device)
    return all_rows


def _measure_rows(lifted, size, batch, settings, base, label, log) -> list[dict[str, Any]]:
    try:
        metrics = measure(lifted, size, batch, settings)
    except Exception as exc:
        _cleanup(settings.device)
        if is_out_of_memory(exc):
            log(f"{label}: out of memory")
            return [{**base, "status": "failed", "error": "out of memory"}]
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log(f"{label}: FAILED {detail}")
        return [{**base, "status": "failed", "error": f"{detail}\n{traceback.format_exc(limit=-3)}"}]
    log(f"{label}: {metrics['latency_ms_median']:.1f} ms, {metrics['gflops_per_volume']:.1f} GFLOP/vol, "
        f"{100 * metrics['achieved_fraction_of_matmul_peak']:.0f}% of peak, {metrics['peak_memory_mb']:.0f} MB")
    extra = {"wall_seconds": metrics["latency_ms_median"] / 1000.0, "peak_memory_mb": metrics["peak_memory_mb"],
             "volumes_per_second": metrics["volumes_per_second"]}
    return [{**base, **extra, "metric": name, "value": float(value), "status": "ok"} for name, value in metrics.items()]
