"""GPU figures in one short run: bf16 vs fp32 forwards, ViT-L fine-tune memory, the Table 1 study's projected time,
and DINOv3-7B lifted at full depth.

Written for a short lent GPU slot (one H200, at most 10 minutes, nothing downloadable): random weights
only, every part under its own time budget, partial results written after every measurement.

1. **Forward table** (``part1``): ViT-S/B (``vits``, ``vitb``) and ResNet-50 (``resnet50``) at 32³ and 64³
   (128³ for ViT-S), strategies 2d, 3d, pcg (+ acs for ResNet-50), in bf16 autocast and in fp32, at batch 1
   and at the best of batches 1, 4, 16 (a batch is tried only while the previous one fitted and took less
   than ``max_call_s``). Each configuration is measured by liftbench's own bench code
   (:func:`liftbench.cost.bench.sweep.measure`: median latency after warm-up, peak memory above weights and input,
   FLOPs, fraction of a matmul peak measured in the same run and dtype).
2. **ViT-L PCg fine-tune and LoRA step memory** (``part2``): one forward + backward + AdamW step of the lifted backbone
   (LoRA rows: rank-8 peft adapters on the frozen backbone, as ``liftbench bench --train --lora 8``)
   (:func:`liftbench.cost.bench.sweep.make_step`, the step ``liftbench bench --train`` times) at 64³, batch 32,
   bf16 autocast with activation checkpointing (``lift(..., checkpoint=True)``, as ``lift_for_training`` does
   for ``finetune checkpoint=true``), then without checkpointing, then fp32 batch 8; and, when
   ``liftbench.cost.bench.segstep`` and monai are there, the segmentation fine-tune step (``seg-finetune``: decoder
   included) at batch 8, the setting of the paper's 87 GB (its segmentation runs). Peak = ``torch.cuda.max_memory_allocated`` over two
   steps (the first allocates AdamW's moments), everything the process holds on the GPU included.
3. **Projected time of ``liftbench run --study paper-table1``** (``part3``): per (backbone, strategy), the
   measured bf16 per-volume forward time at 64³ and best batch × the volume-forwards ``table1-probe`` does
   (see ``FORMULA``), summed over the six MedMNIST 3D sets and 5 seeds. Combinations part 1 did not measure
   (ViT-L, PCm) are measured here.
4. **DINOv3-7B, full depth, at 64³** (``part4``): timm's ``vit_7b_patch16_dinov3`` (6.7B parameters, 40 blocks)
   built on the meta device and given bf16 storage on the GPU without a float32 copy (``benchmarks/lift_7b.py``'s
   :func:`build_bf16`, which also runs it on a CPU), lifted with slice-2D and PCg: one 64³ volume, median of the
   timed forwards after a warm-up, peak memory, FLOPs (traced on meta), and whether PCg's cost stays at slice-2D's.

fp32 figures are true fp32: ``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``
are set to False for the whole run (bf16 autocast is unaffected). Outputs, under ``--out`` (default ``$OUT``
if set, else ``results/bench/gpu``; a temporary folder with ``--smoke``): ``gpu_figures.md`` (the four tables, machine, exact command),
``gpu_figures.json`` (raw figures) and ``gpu_figures.log`` (the progress lines).

    python benchmarks/gpu_figures.py --out "$OUT"          # on the GPU (default --device cuda); ~6-8 minutes
    python benchmarks/gpu_figures.py --smoke --out /tmp/g  # tiny CPU version (shipped tiny backbones), < 1 minute

It runs from a plain checkout (no ``pip install``: the repository root is put on ``sys.path`` and the
built-in plugins load from ``plugins/``); it needs torch and timm, not medmnist (the split sizes are built
in and checked against ``medmnist.INFO`` when medmnist is installed).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "benchmarks"):  # liftbench and the built-in plugins; lift_7b.py beside this script
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import lift_7b  # noqa: E402  (stdlib imports only: torch and timm load when part 4 builds the model)

PAPER_FINETUNE_GB = 87.0  # the paper's ViT-L fine-tune GPU memory on one H200 (its segmentation runs; README.md)
GOAL_GB = 24.0
LORA_RANK = 8  # part 2's LoRA rows: peft adapters of this rank (alpha 2·rank) on every Linear of the blocks
# MedMNIST 3D split sizes (train, val, test), as medmnist 3.0.2's INFO['<flag>']['n_samples'] gives them.
SPLITS = {
    "organ": ("organmnist3d", 971, 161, 610),
    "nodule": ("nodulemnist3d", 1158, 165, 310),
    "fracture": ("fracturemnist3d", 1027, 103, 240),
    "adrenal": ("adrenalmnist3d", 1188, 98, 298),
    "vessel": ("vesselmnist3d", 1335, 191, 382),
    "synapse": ("synapsemnist3d", 1230, 177, 352),
}
# The paper-table1 study (liftbench/studies/paper-table1.toml) and table1-probe's defaults (plugins/protocols.py).
TABLE1 = {"vits": ("2d", "3d", "pcm", "pcg"), "vitb": ("2d", "3d", "pcm", "pcg"), "vitl": ("2d", "3d", "pcm", "pcg"),
          "resnet50": ("2d", "3d", "acs", "pcg")}  # fmt: skip
EPOCHS, SEEDS, TRAIN_BATCH = 200, 5, 32
FORMULA = (
    "Per run (one set, one backbone x strategy, one seed), table1-probe's volume-forwards: "
    "ViT (no BatchNorm: validation and test features computed once, eval mode) F = E*N_train + N_val + N_test; "
    "ResNet-50 (backbone in train mode moves BatchNorm statistics, so validation is recomputed every epoch and "
    "test at each new best epoch, k of them, 1 <= k <= E) F = E*N_train + (E+1)*N_val + (k+1)*N_test. "
    "E = 200 epochs (batch 32, every training volume once per epoch, augmented). "
    "Time = sum over the 6 sets and 5 seeds of F * t_vol, t_vol = median bf16 forward latency at 64^3 and the best "
    "measured batch / batch. A lower bound on wall time: data loading, augmentation, the head's training and "
    "Python overhead are not counted."
)


def import_bench() -> str:
    """Import liftbench's bench code; '' or why the segmentation step is unavailable.

    ``liftbench.cost.bench.sweep`` imports the segmentation step (``liftbench.cost.bench.segstep``), whose loss needs monai.
    Where monai is missing (a bare GPU image), a placeholder ``segstep`` stands in so that the forward and
    train-step figures still run; the segmentation rows then say monai is missing (carry its wheel)."""
    try:
        import liftbench.cost.bench.sweep  # noqa: F401

        return ""
    except ImportError as exc:
        if "monai" not in str(exc):
            raise
        reason = (
            f"monai is not installed ({exc}); carry its wheel for the seg-finetune rows (results/bench/gpu/README.md)"
        )
    import types

    def make_seg_step(*args, **kwargs):
        raise ModuleNotFoundError(reason)

    stub = types.ModuleType("liftbench.cost.bench.segstep")
    stub.make_seg_step, stub.SEG_MODES, stub.UNAVAILABLE = make_seg_step, ("frozen", "finetune"), reason
    sys.modules["liftbench.cost.bench.segstep"] = stub
    import liftbench.cost.bench.sweep  # noqa: F401, E402

    return reason


def _stamp() -> str:
    return f"[{dt.datetime.now(dt.timezone.utc):%H:%M:%S} +{time.perf_counter() - T0:6.1f}s]"


@dataclass
class Plan:
    """What one run measures; ``gpu()`` is the real one, ``smoke()`` the tiny CPU stand-in."""

    device: str
    roles: dict  # role name in the tables -> registered backbone
    part1: list  # (role, sizes, strategies)
    dtypes: tuple = ("bf16", "fp32")
    batches: tuple = (1, 4, 16)
    warmup: int = 2
    repeats: int = 5
    matmul_n: int = 8192
    max_call_s: float = 1.5  # a larger batch is tried only when this one took less
    part2: list = field(default_factory=list)  # (label, kind, dtype, batch, checkpoint)
    ft_role: str = "vitl"
    ft_strategy: str = "pcg"
    ft_size: int = 64
    table1_size: int = 64
    size_label: dict = field(default_factory=dict)  # measured size -> size it stands for (smoke)
    big_depth: int = lift_7b.FULL_DEPTH  # part 4: DINOv3-7B's blocks (the smoke run: two blocks of its width)
    big_size: int = 64
    budgets: dict = field(default_factory=lambda: {"part1": 200.0, "part2": 110.0, "part3": 60.0, "part4": 60.0})
    total_budget: float = 510.0
    threads: int = 0  # torch CPU threads (0: torch's default); the smoke run uses 1 (steady on shared cores)

    @classmethod
    def gpu(cls, device: str) -> Plan:
        return cls(
            device=device,
            roles={"vits": "vits", "vitb": "vitb", "vitl": "vitl", "resnet50": "resnet50"},
            part1=[
                ("vits", (32, 64, 128), ("2d", "3d", "pcg")),
                ("vitb", (32, 64), ("2d", "3d", "pcg")),
                ("resnet50", (32, 64), ("2d", "3d", "acs", "pcg")),
            ],  # fmt: skip
            part2=[
                ("bf16 + checkpointing, batch 32", "cls", "bf16", 32, True),
                ("bf16, no checkpointing, batch 32", "cls", "bf16", 32, False),
                ("fp32, no checkpointing, batch 8", "cls", "fp32", 8, False),
                (f"LoRA r{LORA_RANK}, bf16 + checkpointing, batch 32", "lora", "bf16", 32, True),
                (f"LoRA r{LORA_RANK}, bf16, no checkpointing, batch 32", "lora", "bf16", 32, False),
                ("seg-finetune step, bf16 + checkpointing, batch 8", "seg", "bf16", 8, True),
                ("seg-finetune step, fp32, no checkpointing, batch 8", "seg", "fp32", 8, False),
            ],  # fmt: skip
        )

    @classmethod
    def smoke(cls, device: str) -> Plan:
        vit, cnn = "vit-tiny-shapes", "resnet-tiny-shapes"
        return cls(
            device=device,
            roles={"vits": vit, "vitb": vit, "vitl": vit, "resnet50": cnn},
            part1=[("vits", (16, 32), ("2d", "3d", "pcg")), ("resnet50", (16,), ("2d", "3d", "acs", "pcg"))],
            batches=(1, 2),
            warmup=1,
            repeats=1,
            matmul_n=256,
            max_call_s=5.0,
            part2=[  # the LoRA row first: it adds and removes adapters, the riskiest path of part 2
                (f"LoRA r{LORA_RANK}, bf16 + checkpointing, batch 4 (stands for 32)", "lora", "bf16", 4, True),
                ("bf16 + checkpointing, batch 4 (stands for 32)", "cls", "bf16", 4, True),
                ("bf16, no checkpointing, batch 4 (stands for 32)", "cls", "bf16", 4, False),
                ("fp32, no checkpointing, batch 2 (stands for 8)", "cls", "fp32", 2, False),
                ("seg-finetune step, bf16 + checkpointing, batch 2 (stands for 8)", "seg", "bf16", 2, True),
            ],  # fmt: skip
            ft_size=16,
            table1_size=16,
            size_label={16: 64},
            threads=1,
            big_depth=2,  # block 1 is PCg's first off-axial plane (block 0 is HW, as slice-2D)
            big_size=16,
            budgets={"part1": 25.0, "part2": 15.0, "part3": 12.0, "part4": 60.0},
            total_budget=80.0,
        )


class Recorder:
    """Holds every figure; rewrites the JSON and the Markdown after each measurement (partial results survive)."""

    def __init__(self, out: Path, plan: Plan, command: str) -> None:
        self.out, self.plan = out, plan
        out.mkdir(parents=True, exist_ok=True)
        self.log_path = out / "gpu_figures.log"
        self.log_path.write_text("")
        self.data: dict = {"command": command, "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                           "status": {}, "machine": {}, "settings": {}, "part1": [], "part2": [], "part3": {}, "part4": []}  # fmt: skip

    def log(self, message: str) -> None:
        line = f"{_stamp()} {message}"
        print(line, flush=True)
        with self.log_path.open("a") as handle:
            handle.write(line + "\n")

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.perf_counter() - T0, 1)
        for name, text in (
            ("gpu_figures.json", json.dumps(self.data, indent=1, default=str)),
            ("gpu_figures.md", markdown(self.data)),
        ):
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(text)
            tmp.replace(self.out / name)


class Budget:
    def __init__(self, seconds: float, total_deadline: float) -> None:
        self.deadline = min(time.perf_counter() + seconds, total_deadline)

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def _cleanup(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _error_text(exc: BaseException) -> str:
    from liftbench.cost.bench.measure import is_out_of_memory

    if is_out_of_memory(exc):
        return "OOM"
    return "failed: " + "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[0][:300]


class Models:
    """Backbones built once (random weights) and kept while a part needs them."""

    def __init__(self, registry, plan: Plan) -> None:
        self.registry, self.plan, self.cache = registry, plan, {}

    def entry(self, role: str):
        return self.registry.get("backbone", self.plan.roles[role])

    def get(self, role: str):
        import torch

        name = self.plan.roles[role]
        if name not in self.cache:
            entry = self.entry(role)
            torch.manual_seed(0)
            model, weights = entry.load()("random", **entry.options)
            self.cache[name] = (model.to(self.plan.device), weights)
        return self.cache[name]

    def put(self, role: str, model) -> None:
        name = self.plan.roles[role]
        self.cache[name] = (model, self.cache[name][1])

    def clear(self) -> None:
        self.cache.clear()
        _cleanup(self.plan.device)


def lift(registry, model, strategy: str, checkpoint: bool = False):
    from liftbench.api import lift_with
    from liftbench.cost.bench.sweep import lift_options

    options = lift_options(registry, model, strategy, checkpoint)
    return lift_with(registry, model, strategy, **options), bool(options.get("checkpoint"))


def forward_row(lifted, role, backbone, strategy, size, dtype, batch, plan: Plan) -> dict:
    """One forward configuration through :func:`liftbench.cost.bench.sweep.measure`."""
    from liftbench.cost.bench.sweep import BenchSettings, measure

    settings = BenchSettings(sizes=(size,), batches=(batch,), device=plan.device, dtype=dtype, warmup=plan.warmup,
                             repeats=plan.repeats, matmul_n=plan.matmul_n)  # fmt: skip
    row = {"role": role, "backbone": backbone, "strategy": strategy, "size": size, "dtype": dtype, "batch": batch}
    try:
        m = measure(lifted, size, batch, settings)
    except Exception as exc:  # OOM or anything else: recorded, the run goes on
        row["status"] = _error_text(exc)
    else:
        row.update(status="ok", latency_ms=m["latency_ms_median"], latency_iqr_ms=m["latency_ms_iqr"],
                   ms_per_volume=m["latency_ms_median"] / batch, volumes_per_s=m["volumes_per_second"],
                   peak_memory_mb=m["peak_memory_mb"], gflops_per_volume=m["gflops_per_volume"],
                   achieved_tflops=m["achieved_gflops"] / 1000, matmul_peak_tflops=m["matmul_peak_gflops"] / 1000,
                   fraction_of_matmul_peak=m["achieved_fraction_of_matmul_peak"])  # fmt: skip
    _cleanup(plan.device)
    return row


def sweep_batches(
    rec: Recorder, lifted, role, backbone, strategy, size, dtype, plan: Plan, budget: Budget, sink: list
) -> list[dict]:
    """Batches 1, 4, 16 (the plan's) in order, while the previous fitted, was quick and the budget lasts.
    Every row (skipped ones too) goes to ``sink`` as soon as it exists, and the files are rewritten."""
    rows, stop = [], ""
    for batch in plan.batches:
        if not stop and budget.left() <= 0:
            stop = "skipped: time budget"
        if stop:
            row = {"role": role, "backbone": backbone, "strategy": strategy, "size": size, "dtype": dtype,
                   "batch": batch, "status": stop}  # fmt: skip
            rows.append(row)
            sink.append(row)
            continue
        row = forward_row(lifted, role, backbone, strategy, size, dtype, batch, plan)
        rows.append(row)
        sink.append(row)
        label = f"{role} {strategy} {size}^3 {dtype} batch {batch}"
        if row["status"] == "ok":
            rec.log(f"{label}: {row['latency_ms']:.2f} ms, {row['volumes_per_s']:.1f} vol/s, {row['peak_memory_mb']:.0f} MB, "
                    f"{100 * row['fraction_of_matmul_peak']:.0f}% of {dtype} matmul peak")  # fmt: skip
            if row["latency_ms"] / 1000 > plan.max_call_s:
                stop = f"not tried: batch {batch} already took {row['latency_ms'] / 1000:.1f} s"
        else:
            rec.log(f"{label}: {row['status']}")
            stop = f"not tried: batch {batch} {'OOM' if row['status'] == 'OOM' else 'failed'}"
        rec.save()
    return rows


def part1(rec: Recorder, registry, models: Models, plan: Plan) -> None:
    from liftbench.study.grid_runs import lift_skip_reason

    budget = Budget(plan.budgets["part1"], T0 + plan.total_budget)
    rec.log(f"part 1: forwards, bf16 vs fp32 (budget {budget.left():.0f} s)")
    for role, sizes, strategies in plan.part1:
        if budget.left() <= 0:
            for strategy in strategies:
                for size in sizes:
                    for dtype in plan.dtypes:
                        rec.data["part1"].append({"role": role, "backbone": plan.roles[role], "strategy": strategy, "size": size,
                                                  "dtype": dtype, "batch": plan.batches[0], "status": "skipped: time budget"})  # fmt: skip
            rec.log(f"part 1 {role}: skipped (time budget)")
            rec.save()
            continue
        try:
            model, _ = models.get(role)
        except Exception as exc:
            rec.log(f"part 1 {role}: cannot build ({_error_text(exc)})")
            rec.data["part1"].append({"role": role, "backbone": plan.roles[role], "status": _error_text(exc)})
            continue
        entry = models.entry(role)
        for strategy in strategies:
            reason = lift_skip_reason(entry, registry.get("strategy", strategy), list(strategies))
            lifted = None
            if not reason:
                try:
                    lifted, _ = lift(registry, model, strategy)
                except Exception as exc:
                    reason = _error_text(exc)
            for size in sizes:
                for dtype in plan.dtypes:
                    if reason:
                        rec.data["part1"].append({"role": role, "backbone": plan.roles[role], "strategy": strategy,
                                                  "size": size, "dtype": dtype, "status": f"skipped: {reason}"})  # fmt: skip
                        continue
                    sweep_batches(
                        rec, lifted, role, plan.roles[role], strategy, size, dtype, plan, budget, rec.data["part1"]
                    )
            if lifted is not None:
                model = lifted.unlift()
                models.put(role, model)
            del lifted
            _cleanup(plan.device)
        rec.save()
    rec.data["status"]["part1"] = "done" if budget.left() > 0 else "partial: time budget"


def part2(rec: Recorder, registry, models: Models, plan: Plan) -> None:
    import torch

    from liftbench.cost.bench.measure import peak_memory_mb, synchronize
    from liftbench.cost.bench.sweep import BenchSettings, make_step, train_sizes

    budget = Budget(plan.budgets["part2"], T0 + plan.total_budget)
    role, strategy, size, device = plan.ft_role, plan.ft_strategy, plan.ft_size, plan.device
    cuda = device.startswith("cuda")
    rec.log(f"part 2: {role} {strategy} fine-tune step memory at {size}^3 (budget {budget.left():.0f} s)")
    models.clear()  # only this backbone on the GPU: the peak is everything the process holds
    try:
        model, _ = models.get(role)
    except Exception as exc:
        rec.data["part2"].append({"config": "build", "status": _error_text(exc)})
        rec.data["status"]["part2"] = "failed"
        rec.log(f"part 2: cannot build {role}: {_error_text(exc)}")
        return
    for label, kind, dtype, batch, checkpoint in plan.part2:
        row = {"config": label, "kind": kind, "backbone": plan.roles[role], "strategy": strategy, "size": size,
               "dtype": dtype, "batch": batch, "checkpoint_requested": checkpoint}  # fmt: skip
        rec.data["part2"].append(row)
        if budget.left() <= 0:
            row["status"] = "skipped: time budget"
            rec.log(f"part 2 {label}: skipped (time budget)")
            rec.save()
            continue
        lifted = step = volumes = attachment = None
        if kind == "seg" and rec.data["settings"].get("seg_unavailable"):
            row["status"] = "skipped: monai not installed (carry its wheel: results/bench/gpu/README.md)"
            rec.log(f"part 2 {label}: {row['status']}")
            rec.save()
            continue
        try:
            if kind == "seg":
                from liftbench.cost.bench.segstep import make_seg_step
            if kind == "lora":  # the lora protocol's adapters on the frozen backbone, before lifting
                from liftbench.protocols.adapters import attach_lora

                attachment = attach_lora(model, "vit", rank=LORA_RANK, alpha=2.0 * LORA_RANK)
            lifted, applied = lift(registry, model, strategy, checkpoint)
            row["checkpoint_applied"] = applied
            volumes = torch.randn(batch, 1, size, size, size, generator=torch.Generator().manual_seed(0)).to(device)
            if kind == "seg":
                step, _sizes = make_seg_step(lifted, volumes, "finetune", 6, dtype, device)
            else:
                step = make_step(lifted, volumes, BenchSettings(device=device, dtype=dtype, train=True))
            _cleanup(device)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
            times = []
            for _ in range(2):  # the first step allocates AdamW's moments
                start = time.perf_counter()
                step()
                synchronize(device)
                times.append(time.perf_counter() - start)
            if cuda:
                peak = torch.cuda.max_memory_allocated()
                row.update(peak_allocated_gb=peak / 1e9, peak_allocated_gib=peak / 2**30,
                           peak_reserved_gb=torch.cuda.max_memory_reserved() / 1e9, allocated_before_gb=before / 1e9)  # fmt: skip
            else:
                row["peak_rss_growth_mb"] = peak_memory_mb(step, device)
            row.update(status="ok", first_step_s=times[0], step_s=times[1], volumes_per_s=batch / times[1])
            if kind != "seg":
                row.update(train_sizes(lifted, step.optimizer))
            shown = (
                f"{row['peak_allocated_gb']:.2f} GB peak allocated"
                if cuda
                else f"{row['peak_rss_growth_mb']:.0f} MB RSS growth (CPU)"
            )
            rec.log(f"part 2 {label}: {shown}, step {times[1]:.3f} s (checkpointing applied: {applied})")
        except Exception as exc:
            row["status"] = _error_text(exc)
            rec.log(f"part 2 {label}: {row['status']}")
        finally:
            step = volumes = None
            for p in model.parameters():
                p.grad = None
            if lifted is not None:
                try:
                    model = lifted.unlift()
                    if attachment is not None:  # adapters out again, every weight trainable for the next row
                        model = attachment.peft_model.unload()
                        model.requires_grad_(True)
                except Exception as exc:  # a half-lifted model: build it again
                    rec.log(f"part 2: unlift failed ({_error_text(exc)}); rebuilding {role}")
                    models.clear()
                    model, _ = models.get(role)
            lifted = None
            models.put(role, model)
            _cleanup(device)
        rec.save()
    rec.data["status"]["part2"] = "done" if budget.left() > 0 else "partial: time budget"


def split_sizes(rec: Recorder) -> dict:
    """The built-in split sizes, checked against medmnist's INFO where medmnist is installed."""
    sizes = {name: {"train": n[1], "val": n[2], "test": n[3]} for name, n in SPLITS.items()}
    try:
        import medmnist
        from medmnist import INFO
    except Exception:
        rec.data["part3"]["splits_source"] = "built in (medmnist 3.0.2's INFO; medmnist is not installed here to check)"
        return sizes
    differ = []
    for name, (flag, *_rest) in SPLITS.items():
        info = INFO[flag]["n_samples"]
        got = {k: int(info[k]) for k in ("train", "val", "test")}
        if got != sizes[name]:
            differ.append(f"{name}: built in {sizes[name]}, medmnist {got}")
            sizes[name] = got
    version = getattr(medmnist, "__version__", "?")
    rec.data["part3"]["splits_source"] = f"medmnist {version} INFO" + (
        f" (differs from the built-in sizes: {'; '.join(differ)})" if differ else " (matches the built-in sizes)"
    )
    return sizes


def forwards_per_run(role: str, n: dict, k: int) -> int:
    if role == "resnet50":
        return EPOCHS * n["train"] + (EPOCHS + 1) * n["val"] + (k + 1) * n["test"]
    return EPOCHS * n["train"] + n["val"] + n["test"]


def best_bf16(rows: list[dict], role: str, strategy: str, size: int) -> dict | None:
    ok = [r for r in rows if r.get("role") == role and r.get("strategy") == strategy and r.get("size") == size
          and r.get("dtype") == "bf16" and r.get("status") == "ok"]  # fmt: skip
    return min(ok, key=lambda r: r["ms_per_volume"]) if ok else None


def part3(rec: Recorder, registry, models: Models, plan: Plan) -> None:
    from liftbench.study.grid_runs import lift_skip_reason

    budget = Budget(plan.budgets["part3"], T0 + plan.total_budget)
    size = plan.table1_size
    rec.log(f"part 3: projected time of paper-table1 (budget {budget.left():.0f} s)")
    sizes = split_sizes(rec)
    p3 = rec.data["part3"]
    p3.update(formula=FORMULA, epochs=EPOCHS, seeds=SEEDS, size=plan.size_label.get(size, size), measured_size=size,
              splits=sizes, measured=[], cells=[])  # fmt: skip
    plan_bf16 = Plan(**{**plan.__dict__, "dtypes": ("bf16",)})
    # measure what part 1 did not: ViT-L first (largest share of the study), then PCm, then anything part 1 skipped
    wanted = [(role, s) for role in ("vitl", "vits", "vitb", "resnet50") for s in TABLE1[role]]
    missing = [(r, s) for r, s in wanted if best_bf16(rec.data["part1"], r, s, size) is None]
    missing.sort(key=lambda rs: (rs[0] != "vitl", rs[1] != "pcm"))
    for role, strategy in missing:
        if budget.left() <= 0:
            p3["measured"].append({"role": role, "strategy": strategy, "status": "skipped: time budget"})
            continue
        try:
            model, _ = models.get(role)
            reason = lift_skip_reason(models.entry(role), registry.get("strategy", strategy), list(TABLE1[role]))
            if reason:
                p3["measured"].append({"role": role, "strategy": strategy, "status": f"skipped: {reason}"})
                continue
            lifted, _ = lift(registry, model, strategy)
        except Exception as exc:
            p3["measured"].append({"role": role, "strategy": strategy, "status": _error_text(exc)})
            rec.log(f"part 3 {role} {strategy}: {_error_text(exc)}")
            continue
        try:
            sweep_batches(
                rec, lifted, role, plan.roles[role], strategy, size, "bf16", plan_bf16, budget, p3["measured"]
            )
        finally:
            models.put(role, lifted.unlift())
            del lifted
            _cleanup(plan.device)
    rows = rec.data["part1"] + p3["measured"]
    totals = {"low_h": 0.0, "high_h": 0.0, "complete": True, "by_backbone": {}}
    for role, strategies in TABLE1.items():
        for strategy in strategies:
            best = best_bf16(rows, role, strategy, size)
            cell = {"role": role, "strategy": strategy}
            if best is None and strategy == "pcm":
                best = best_bf16(rows, role, "pcg", size)
                cell["note"] = "t_vol of pcg (pcm not measured; same FLOPs)" if best else ""
            if best is None:
                cell["status"] = "no measurement"
                totals["complete"] = False
                p3["cells"].append(cell)
                continue
            t = best["ms_per_volume"] / 1000
            low = sum(forwards_per_run(role, n, 1) for n in sizes.values()) * SEEDS
            high = sum(forwards_per_run(role, n, EPOCHS) for n in sizes.values()) * SEEDS
            cell.update(status="ok", t_vol_ms=t * 1000, batch=best["batch"], forwards_low=low, forwards_high=high,
                        hours_low=low * t / 3600, hours_high=high * t / 3600)  # fmt: skip
            totals["low_h"] += cell["hours_low"]
            totals["high_h"] += cell["hours_high"]
            sub = totals["by_backbone"].setdefault(role, [0.0, 0.0])
            sub[0], sub[1] = sub[0] + cell["hours_low"], sub[1] + cell["hours_high"]
            p3["cells"].append(cell)
    p3["total"] = totals
    rec.data["status"]["part3"] = "done" if budget.left() > 0 else "partial: time budget"
    rec.log(
        f"part 3: projected {totals['low_h']:.2f}-{totals['high_h']:.2f} GPU-hours of backbone forwards"
        + ("" if totals["complete"] else " (incomplete: some cells unmeasured)")
    )
    rec.save()


def part4(rec: Recorder, registry, models: Models, plan: Plan) -> None:
    import torch

    from liftbench.api import lift_with
    from liftbench.cost.bench.measure import synchronize

    budget = Budget(plan.budgets["part4"], T0 + plan.total_budget)
    depth, size, device = plan.big_depth, plan.big_size, plan.device
    cuda = device.startswith("cuda")
    rec.log(f"part 4: DINOv3-7B ({depth} of {lift_7b.FULL_DEPTH} blocks), bf16, 2d and pcg at {size}^3 (budget {budget.left():.0f} s)")
    models.clear()  # only the 7B on the GPU
    if budget.left() <= 0:
        rec.data["part4"].append({"strategy": "build", "status": "skipped: time budget", "depth": depth})
        rec.data["status"]["part4"] = "skipped: time budget"
        return
    try:
        start = time.perf_counter()
        model = lift_7b.build_bf16(depth, device=device)
        synchronize(device)
        build = {"strategy": "build", "status": "ok", "build_s": time.perf_counter() - start, "depth": depth,
                 "parameters": sum(p.numel() for p in model.parameters()),
                 "float32_parameters": sum(p.numel() for p in model.parameters() if p.dtype == torch.float32)}  # fmt: skip
        if cuda:
            build["weights_gb"] = torch.cuda.memory_allocated() / 1e9
    except Exception as exc:
        rec.data["part4"].append({"strategy": "build", "status": _error_text(exc), "depth": depth})
        rec.data["status"]["part4"] = "failed"
        rec.log(f"part 4: cannot build the 7B: {_error_text(exc)}")
        return
    rec.data["part4"].append(build)
    rec.log(f"part 4: built {build['parameters']:,} parameters in {build['build_s']:.1f} s")
    rec.save()
    volume = torch.randn(1, 1, size, size, size, generator=torch.Generator().manual_seed(1)).to(device, torch.bfloat16)
    pooled = {}
    for strategy in ("2d", "pcg"):
        row = {"strategy": strategy, "size": size, "depth": depth, "dtype": "bf16 weights"}
        rec.data["part4"].append(row)
        if budget.left() <= 0:
            row["status"] = "skipped: time budget"
            continue
        lifted = None
        try:
            lifted = lift_with(registry, model, strategy)
            with torch.inference_mode():
                lifted(volume)  # warm-up
                synchronize(device)
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                times = []
                for _ in range(plan.repeats):  # as part 1 times each forward
                    begin = time.perf_counter()
                    features = lifted(volume)
                    synchronize(device)
                    times.append(time.perf_counter() - begin)
            pooled[strategy] = features.pooled.float().cpu()
            row.update(status="ok", forward_s=sorted(times)[len(times) // 2], finite=bool(torch.isfinite(pooled[strategy]).all()),
                       gflop=lift_7b.flops_per_volume(registry, strategy, size, depth) / 1e9)  # fmt: skip
            if cuda:
                row["peak_allocated_gb"] = torch.cuda.max_memory_allocated() / 1e9
            rec.log(f"part 4 {strategy}: forward {row['forward_s']:.3f} s, {row['gflop']:,.0f} GFLOP")
        except Exception as exc:
            row["status"] = _error_text(exc)
            rec.log(f"part 4 {strategy}: {row['status']}")
        finally:
            if lifted is not None:
                model = lifted.unlift()
            _cleanup(device)
        rec.save()
    if len(pooled) == 2:
        rec.data["part4"].append({"strategy": "pcg vs 2d", "status": "ok",
                                  "max_abs_difference": float((pooled["pcg"] - pooled["2d"]).abs().max())})  # fmt: skip
    model = None
    _cleanup(device)
    rec.data["status"]["part4"] = "done" if budget.left() > 0 else "partial: time budget"


# ------------------------------------------------------------------------------------------------ markdown


def _f(value, spec: str = ".2f", unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:{spec}}{unit}"


def _cell(rows: list[dict]) -> str:
    ok = [r for r in rows if r.get("status") == "ok"]
    if ok:
        r = max(ok, key=lambda r: r["volumes_per_s"])
        return (f"b{r['batch']}: {r['volumes_per_s']:,.1f} vol/s, {r['peak_memory_mb']:,.0f} MB, "
                f"{100 * r['fraction_of_matmul_peak']:.0f}%")  # fmt: skip
    return rows[0]["status"] if rows else "–"


def _b1(rows: list[dict]):
    r = [r for r in rows if r.get("batch") == 1]
    return r[0] if r else None


def markdown(data: dict) -> str:
    m, s = data.get("machine", {}), data.get("settings", {})
    lines = ["# GPU figures (`benchmarks/gpu_figures.py`)", ""]
    if s.get("smoke"):
        lines += ["**SMOKE RUN** (CPU, tiny built-in backbones standing in for ViT-S/B/L and ResNet-50, tiny sizes): "
                  "proves the script works; the numbers mean nothing for a GPU.", ""]  # fmt: skip
    lines += [
        f"- machine: {m.get('device_name', '?')}; torch {m.get('torch', '?')}, CUDA {m.get('cuda', '–')}, cuDNN {m.get('cudnn', '–')}, "
        f"timm {m.get('timm', '?')}, Python {m.get('python', '?')}, liftbench {m.get('liftbench', '?')} {m.get('git_commit', '')}",
        f"- command: `{data.get('command', '')}`",
        f"- started {data.get('started_at', '')}, elapsed {data.get('elapsed_s', '?')} s; parts: "
        + ", ".join(f"{k} {v}" for k, v in data.get("status", {}).items()),
        f"- random weights (cost does not depend on weight values); fp32 is true fp32: "
        f"`torch.backends.cuda.matmul.allow_tf32 = {s.get('allow_tf32_matmul')}`, "
        f"`torch.backends.cudnn.allow_tf32 = {s.get('allow_tf32_cudnn')}`; bf16 = `torch.autocast(dtype=torch.bfloat16)`; "
        f"cudnn.benchmark {s.get('cudnn_benchmark')}",
        "",
        "## 1. Forward, bf16 autocast vs fp32",
        "",
        f"`liftbench.cost.bench.sweep.measure` per configuration: median of {s.get('repeats', '?')} calls after {s.get('warmup', '?')} "
        f"warm-up, synchronised; peak memory above weights and input (`torch.cuda.max_memory_allocated`); % = achieved FLOP/s "
        f"over the best {s.get('matmul_n', '?')}² matmul of the same dtype measured in the same run. Best batch: the highest "
        f"volumes/s among batches {', '.join(map(str, s.get('batches', [])))} (a batch is tried while the previous fitted and "
        f"took under {s.get('max_call_s', '?')} s).",
        "",
        "| backbone | strategy | size | GFLOP/vol | bf16 b1 ms | fp32 b1 ms | fp32/bf16 (b1) | bf16 best | fp32 best |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    rows = data.get("part1", [])
    keys = list(dict.fromkeys((r.get("role"), r.get("strategy"), r.get("size")) for r in rows if r.get("strategy")))
    for role, strategy, size in keys:
        group = [r for r in rows if (r.get("role"), r.get("strategy"), r.get("size")) == (role, strategy, size)]
        bf, fp = [r for r in group if r.get("dtype") == "bf16"], [r for r in group if r.get("dtype") == "fp32"]
        b1b, b1f = _b1(bf), _b1(fp)
        lb = b1b.get("latency_ms") if b1b else None
        lf = b1f.get("latency_ms") if b1f else None
        gf = next((r["gflops_per_volume"] for r in group if r.get("status") == "ok"), None)
        ratio = lf / lb if lb and lf else None
        show_b = _f(lb) if lb is not None else (b1b or {}).get("status", "–")
        show_f = _f(lf) if lf is not None else (b1f or {}).get("status", "–")
        lines.append(f"| {role} | {strategy} | {size}³ | {_f(gf, ',.1f')} | {show_b} | {show_f} | {_f(ratio, '.2f', '×')} | "
                     f"{_cell(bf)} | {_cell(fp)} |")  # fmt: skip
    p2 = data.get("part2", [])
    lines += [
        "",
        f"## 2. ViT-L PCg fine-tune step memory ({next((r.get('size') for r in p2 if r.get('size')), 64)}³)",
        "",
        "One forward + backward + AdamW step, twice (the first allocates AdamW's moments); peak = "
        "`torch.cuda.max_memory_allocated` for the whole process (weights, gradients, optimizer state, activations). "
        "`cls`: the classification step `liftbench bench --train` times (`finetune`/`table2-finetune` without the "
        f"linear head); `lora`: the same step training LoRA adapters (rank {LORA_RANK}, peft) on the frozen backbone "
        "(`liftbench bench --train --lora 8`, the `lora`/`table2-lora` protocols); `seg`: the `seg-finetune` step (`liftbench.cost.bench.segstep`: last-block maps, the authors' "
        f"decoder, 6 classes). The paper reports {PAPER_FINETUNE_GB:.0f} GB of GPU memory for ViT-L fine-tuning on one "
        f"H200 in its segmentation experiments (batch 12 LIDC 160² / 8 MMWHS 64³); the goal is ≤ {GOAL_GB:.0f} GB. "
        "Weights stay fp32 under bf16 autocast (as the protocols run).",
        "",
        "| config | step | checkpointing applied | peak allocated GB | peak reserved GB | vs 87 GB | ≤ 24 GB | step s | vol/s "
        "| trainable params | AdamW state GB |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in p2:
        if r.get("status") != "ok":
            lines.append(f"| {r.get('config')} | {r.get('kind', '')} | – | {r.get('status')} | – | – | – | – | – | – | – |")
            continue
        gb = r.get("peak_allocated_gb")
        if gb is None:
            peak, vs, goal = f"{r.get('peak_rss_growth_mb', 0):,.0f} MB RSS (CPU)", "–", "–"
        else:
            peak, vs, goal = _f(gb), f"{gb / PAPER_FINETUNE_GB:.2f}×", "yes" if gb <= GOAL_GB else "no"
        lines.append(f"| {r['config']} | {r['kind']} | {r.get('checkpoint_applied')} | {peak} | {_f(r.get('peak_reserved_gb'))} | "
                     f"{vs} | {goal} | {_f(r.get('step_s'), '.3f')} | {_f(r.get('volumes_per_s'), '.1f')} | "
                     f"{_f(r.get('trainable_parameters'), ',.0f')} | {_f((r.get('optimizer_state_mb') or 0) * 2**20 / 1e9 or None, '.4f')} |")  # fmt: skip
    p3 = data.get("part3", {})
    lines += ["", "## 3. Projected time of `liftbench run --study paper-table1` (table1-probe)", ""]
    if p3.get("formula"):
        lines += [p3["formula"], "", f"Split sizes: {p3.get('splits_source', '')}.", "",
                  "| set | train | val | test |", "|---|---:|---:|---:|"]  # fmt: skip
        for name, n in p3.get("splits", {}).items():
            lines.append(f"| {name} | {n['train']} | {n['val']} | {n['test']} |")
        lines += ["", f"Measured at {p3.get('measured_size')}³ (standing for {p3.get('size')}³), bf16.", "",
                  "| backbone | strategy | t_vol ms (batch) | volume-forwards (6 sets × 5 seeds) | GPU-hours | note |",
                  "|---|---|---:|---:|---:|---|"]  # fmt: skip
        for c in p3.get("cells", []):
            if c.get("status") != "ok":
                lines.append(f"| {c['role']} | {c['strategy']} | {c.get('status')} | – | – | {c.get('note', '')} |")
                continue
            fw = (
                f"{c['forwards_low']:,}"
                if c["forwards_low"] == c["forwards_high"]
                else f"{c['forwards_low']:,}–{c['forwards_high']:,}"
            )
            hours = (
                _f(c["hours_low"])
                if c["forwards_low"] == c["forwards_high"]
                else f"{c['hours_low']:.2f}–{c['hours_high']:.2f}"
            )
            lines.append(
                f"| {c['role']} | {c['strategy']} | {c['t_vol_ms']:.3f} ({c['batch']}) | {fw} | {hours} | {c.get('note', '')} |"
            )
        t = p3.get("total")
        if t:
            lines += ["", f"**Total: {t['low_h']:.2f}–{t['high_h']:.2f} GPU-hours of backbone forwards** "
                      f"(range: ResNet-50's test recomputations, k = 1…{EPOCHS})"
                      + ("" if t.get("complete") else "; INCOMPLETE: some cells were not measured") + "; "
                      + ", ".join(f"{b} {lo:.2f}" + (f"–{hi:.2f}" if hi != lo else "") + " h" for b, (lo, hi) in t.get("by_backbone", {}).items())
                      + f" — {t['low_h'] / 24:.2f}–{t['high_h'] / 24:.2f} days on one GPU run back to back."]  # fmt: skip
    else:
        lines.append(data.get("status", {}).get("part3", "not run"))
    p4 = data.get("part4", [])
    build = next((r for r in p4 if r.get("strategy") == "build"), {})
    depth, full = build.get("depth", lift_7b.FULL_DEPTH), lift_7b.FULL_DEPTH
    lines += ["", f"## 4. DINOv3-7B lifted ({'full depth' if depth == full else f'{depth} of {full} blocks'}), slice-2D and PCg", ""]
    if build.get("status") == "ok":
        lines += [f"timm `vit_7b_patch16_dinov3`, random init, {build['parameters']:,} parameters "
                  f"({build['float32_parameters']:,} in float32), built on the meta device with bf16 storage on the device "
                  f"in {build['build_s']:.1f} s" + (f", {build['weights_gb']:.2f} GB allocated" if "weights_gb" in build else "")
                  + "; one volume under `torch.inference_mode()`, median forward after a warm-up.", "",
                  "| strategy | size | forward s | GFLOP/volume | peak allocated GB |", "|---|---|---:|---:|---:|"]  # fmt: skip
        rows = {r["strategy"]: r for r in p4 if r.get("strategy") in ("2d", "pcg")}
        for strategy, r in rows.items():
            if r.get("status") != "ok":
                lines.append(f"| {strategy} | {r.get('size')}³ | {r.get('status')} | – | – |")
                continue
            lines.append(f"| {strategy} | {r['size']}³ | {r['forward_s']:.3f} | {r['gflop']:,.1f} | {_f(r.get('peak_allocated_gb'))} |")
        if all(rows.get(k, {}).get("status") == "ok" for k in ("2d", "pcg")):
            a, b = rows["2d"], rows["pcg"]
            lines += ["", f"PCg / slice-2D: {b['forward_s'] / a['forward_s']:.2f}× the seconds, {b['gflop'] / a['gflop']:.2f}× the FLOPs."]
    else:
        lines.append(build.get("status") or data.get("status", {}).get("part4", "not run"))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ main


def machine(device: str) -> dict:
    import timm
    import torch

    import liftbench
    from liftbench.run.provenance import source_revision

    info = {"torch": torch.__version__, "timm": timm.__version__, "python": platform.python_version(),
            "liftbench": liftbench.__version__, "platform": platform.platform(), "cpus": os.cpu_count()}  # fmt: skip
    try:
        commit, dirty = source_revision()
        info["git_commit"] = (commit[:12] + ("+dirty" if dirty else "")) if commit else ""
    except Exception:
        info["git_commit"] = ""
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(device_name=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    sm_count=props.multi_processor_count, cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())  # fmt: skip
    else:
        info.update(device_name=f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny CPU version (built-in tiny backbones, tiny sizes), < 1 minute"
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default $OUT if set, else results/bench/gpu; with --smoke a temporary folder)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="total seconds before every remaining measurement is skipped (GPU default 510)",
    )
    parser.add_argument("--parts", default="1,2,3,4", help="which parts to run (default 1,2,3,4)")
    args = parser.parse_args(argv)
    if args.out is None:
        import tempfile

        smoke_out = Path(tempfile.gettempdir()) / "liftbench-gpu-figures-smoke"
        args.out = os.environ.get("OUT") or str(smoke_out if args.smoke else ROOT / "results" / "bench" / "gpu")
    device = "cpu" if args.smoke else args.device
    plan = Plan.smoke(device) if args.smoke else Plan.gpu(device)
    if args.budget is not None:
        plan.total_budget = args.budget
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_figures: no CUDA device here; use --smoke (or --device cpu). Nothing written.", file=sys.stderr)
        return 2
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    rec = Recorder(Path(args.out), plan, command)

    def on_term(signum, frame):  # a kill at the time limit: say so in the summary
        rec.data["status"]["interrupted"] = f"signal {signum}"
        rec.save()
        sys.exit(124)

    signal.signal(signal.SIGTERM, on_term)
    rec.log(
        f"gpu_figures: device {device}{' (smoke)' if args.smoke else ''}, out {args.out}, budget {plan.total_budget:.0f} s"
    )
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 figures are true fp32
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if plan.threads:
        torch.set_num_threads(plan.threads)
    from liftbench.plugin.manager import build_registry

    seg_unavailable = import_bench()
    if seg_unavailable:
        rec.log(f"note: {seg_unavailable}")
    registry = build_registry()
    rec.data["machine"] = machine(device)
    rec.data["settings"] = {"smoke": args.smoke, "device": device, "weights": "random", "roles": plan.roles,
                            "allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                            "allow_tf32_cudnn": torch.backends.cudnn.allow_tf32,
                            "cudnn_benchmark": torch.backends.cudnn.benchmark, "batches": list(plan.batches),
                            "warmup": plan.warmup, "repeats": plan.repeats, "matmul_n": plan.matmul_n,
                            "max_call_s": plan.max_call_s, "seg_unavailable": seg_unavailable, "threads": torch.get_num_threads(), "budgets_s": plan.budgets, "total_budget_s": plan.total_budget}  # fmt: skip
    rec.log(f"machine: {rec.data['machine'].get('device_name')}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    rec.save()
    models = Models(registry, plan)
    for name, fn in (("1", part1), ("2", part2), ("3", part3), ("4", part4)):
        if name not in parts:
            rec.data["status"][f"part{name}"] = "not asked for (--parts)"
            continue
        try:
            fn(rec, registry, models, plan)
        except Exception as exc:  # a part that breaks leaves the others and its partial figures
            rec.data["status"][f"part{name}"] = _error_text(exc)
            rec.log(f"part {name} broke: {_error_text(exc)}\n{traceback.format_exc(limit=-4)}")
        rec.save()
    models.clear()
    rec.save()
    rec.log(
        f"done in {time.perf_counter() - T0:.0f} s: {rec.out / 'gpu_figures.md'}, gpu_figures.json, gpu_figures.log"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
