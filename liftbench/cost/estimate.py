"""What a grid will cost, before it runs (``liftbench run ... --dry-run``).

For each feature-extraction group (dataset, size, backbone, weights, strategy, schedule) the lifted
backbone is built on PyTorch's ``meta`` device — shapes only, no memory, no arithmetic — and one
forward is traced there to count its FLOPs (PyTorch's counter, with liftbench's CPU attention formulas)
and the size of every module's output. A quick calibration on the real device turns FLOPs into
seconds: one real forward of the same lifting (backbone, strategy, schedule) at a small size (32³, or
the grid's size if smaller) gives the FLOP rate that kind of computation reaches here — a 3D
convolution and a batch of 2D ones run at very different rates — and the group is charged at it.

Large backbones are never built for real while planning: a backbone over ``CALIBRATE_MAX_PARAMETERS``
(ViT-H+, ViT-7B) is calibrated on a stand-in of its own architecture with one block and at most ViT-L's width
(:func:`calibration_options`) — a transformer block's FLOP rate depends on its matmul sizes, which saturate the
device well before 4096 wide, so the stand-in's rate is, if anything, low and the time an upper bound. Planning
a 7B grid therefore allocates no 7B weights: its peak RSS (1.00 GB) is ``import torch, timm`` (0.79 GB; bare
``import torch``: 0.57 GB) plus the data and the calibration forward (``docs/running.md``; a test keeps it within
160 MB of those imports). :mod:`liftbench.cost.estimate_memory` gives inference, fine-tune and LoRA memory on the
meta device.

The memory figure is the weights plus a multiple of the largest activation a module returns (inference
keeps a few such tensors alive at once); it is a rough upper bound for extraction, not for training.
Both figures are estimates: ``benchmarks/estimate_vs_actual.py`` compares them with measured runs and
the committed table says how far off they are.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from liftbench.plugin.registry import Registry

ACTIVATION_FACTOR = 4  # live activations at the peak, in units of the largest module output


@dataclass
class GroupCost:
    """The estimated cost of one feature-extraction group."""

    dataset: str
    size: int
    backbone: str
    strategy: str
    schedule: str
    runs: int
    volumes: int | None
    gflop_per_volume: float
    seconds_per_volume: float
    peak_mb: float
    fits: bool

    @property
    def seconds(self) -> float | None:
        return None if self.volumes is None else self.volumes * self.seconds_per_volume


def _meta_lifted(registry: Registry, backbone: str, strategy: str, schedule: str):
    from liftbench.api import lift_with

    entry = registry.get("backbone", backbone)
    with torch.device("meta"):
        model, _ = entry.load()("random", **entry.options)
    lifted = lift_with(registry, model.eval(), strategy, family=entry.family, **({"schedule": schedule} if schedule else {}))
    return model, lifted


def meta_flops(lifted, handles: list, batch: int, size: int) -> float:
    """FLOPs of one forward of ``lifted`` on a zero ``(batch, C, size, size, size)`` volume on the meta device
    (no memory used); ``handles`` (hooks the caller registered to watch it) are removed and the model unlifted
    afterwards, whatever happens."""
    from liftbench.cost.bench.flops import count_flops

    try:
        x = torch.zeros(batch, lifted.in_chans, size, size, size, device="meta")
        with torch.no_grad():
            return float(count_flops(lambda: lifted(x)))
    finally:
        for h in handles:
            h.remove()
        lifted.unlift()


def trace(registry: Registry, backbone: str, strategy: str, schedule: str, size: int, batch: int = 1) -> tuple[float, float]:
    """(FLOPs, estimated peak bytes) of one extraction forward of ``batch`` volumes of ``size``³, on meta."""
    model, lifted = _meta_lifted(registry, backbone, strategy, schedule)
    largest = [0]

    def record(_module, _inputs, output):
        tensors = output if isinstance(output, (tuple, list)) else [output]
        for t in tensors:
            if isinstance(t, torch.Tensor):
                largest[0] = max(largest[0], t.numel() * 4)

    flops = meta_flops(lifted, [m.register_forward_hook(record) for m in model.modules()], batch, size)
    weights = sum(p.numel() * 4 for p in model.parameters())
    return float(flops), float(weights + ACTIVATION_FACTOR * largest[0])


CALIBRATION_SIZE = 32
CALIBRATE_MAX_PARAMETERS = 400_000_000  # above this (ViT-H+, 7B) calibrate on a stand-in (module docstring)
STAND_IN_WIDTH = 1024  # ViT-L's width


def parameter_count(registry: Registry, backbone: str) -> int:
    """The backbone's parameters, counted on the meta device (nothing allocated)."""
    entry = registry.get("backbone", backbone)
    with torch.device("meta"):
        model, _ = entry.load()("random", **entry.options)
    return sum(p.numel() for p in model.parameters())


def calibration_options(registry: Registry, backbone: str) -> dict:
    """The backbone's options for the calibration forward: its own, or for a ViT over
    ``CALIBRATE_MAX_PARAMETERS`` a one-block stand-in at most ``STAND_IN_WIDTH`` wide (same block design)."""
    entry = registry.get("backbone", backbone)
    if entry.family != "vit" or parameter_count(registry, backbone) <= CALIBRATE_MAX_PARAMETERS:
        return dict(entry.options)
    with torch.device("meta"):
        model, _ = entry.load()("random", **entry.options)
    width, head_dim = model.embed_dim, model.embed_dim // model.blocks[0].attn.num_heads
    width = min(width, STAND_IN_WIDTH)
    return {**entry.options, "depth": 1, "embed_dim": width, "num_heads": width // head_dim}


def calibrate(registry: Registry, backbone: str, strategy: str, schedule: str, size: int, device: str) -> float:
    """FLOP/s this lifting reaches on ``device``: one real forward (after a warm-up) at ``size``, of the
    backbone or, for a large one, of its stand-in (:func:`calibration_options`)."""
    from liftbench.api import lift_with
    from liftbench.cost.bench.flops import count_flops

    entry = registry.get("backbone", backbone)
    options = calibration_options(registry, backbone)
    model, _ = entry.load()("random", **options)
    model = model.eval().to(device)
    lifted = lift_with(registry, model, strategy, family=entry.family, **({"schedule": schedule} if schedule else {}))
    x = torch.rand(1, lifted.in_chans, size, size, size, device=device)
    try:
        with torch.inference_mode():
            lifted(x)
            start = time.perf_counter()
            lifted(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
    finally:
        lifted.unlift()
    if options == dict(entry.options):
        flops, _ = trace(registry, backbone, strategy, schedule, size)
    else:  # the stand-in's own FLOPs (traced on meta like the backbone's)
        with torch.device("meta"):
            meta, _ = entry.load()("random", **options)
        meta_lifted = lift_with(registry, meta.eval(), strategy, family=entry.family, **({"schedule": schedule} if schedule else {}))
        with torch.no_grad():
            flops = count_flops(lambda: meta_lifted(torch.zeros(1, meta_lifted.in_chans, size, size, size, device="meta")))
    return flops / max(seconds, 1e-9)


def backbone_rate(registry: Registry, backbone: str, strategy: str, schedule: str, size: int, device: str, rates: dict) -> float:
    """:func:`calibrate`'s FLOP/s for this lifting at ``min(size, CALIBRATION_SIZE)``, measured once per ``rates``."""
    key = (backbone, strategy, schedule, min(size, CALIBRATION_SIZE))
    if key not in rates:
        rates[key] = calibrate(registry, backbone, strategy, schedule, key[-1], device)
    return rates[key]


def available_mb(device: str) -> float:
    """Memory a run may use on ``device``: the GPU's total, or the machine's physical RAM."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_properties(torch.device(device)).total_memory / 2**20
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_dataset(registry: Registry, dataset: str, size: int, data_root: str | None, options: str):
    """The dataset as a run would load it, or None when it cannot be loaded here (e.g. not downloaded yet:
    the per-volume figures still stand, the totals become "?")."""
    import json

    from liftbench.checks import load_dataset as checked
    from liftbench.errors import MissingFileError

    entry = registry.get("dataset", dataset)
    try:  # a file that is there but broken, or a plugin's malformed return, is an error here as in the run
        return checked(entry, size=size, data_root=data_root, options=json.loads(options))
    except MissingFileError:
        return None


def _volumes(registry: Registry, dataset: str, size: int, data_root: str | None, options: str) -> int | None:
    data = load_dataset(registry, dataset, size, data_root, options)
    return None if data is None else sum(len(split) for split in data.splits.values())


def estimate(registry: Registry, runs: Sequence, device: str = "cpu", data_root: str | None = None, batch: int = 4,
             rates: dict | None = None) -> list[GroupCost]:  # fmt: skip
    """One :class:`GroupCost` per feature-extraction group of the runs that will execute (``rates``: calibrations
    to share with :func:`liftbench.cost.estimate_seg.estimate_seg`)."""
    from liftbench.run.spec import group_runs

    rates = {} if rates is None else rates
    volumes: dict[tuple, int | None] = {}  # per dataset, size and options: loaded once, not once per group
    limit = available_mb(device)
    out = []
    for members in group_runs([run for run in runs if not run.skip_reason]):
        s = members[0].spec
        dataset, size, backbone, strategy, schedule, data_opts = s.dataset, s.size, s.backbone, s.strategy, s.schedule, s.dataset_options
        rate = backbone_rate(registry, backbone, strategy, schedule, size, device, rates)
        flops, peak_bytes = trace(registry, backbone, strategy, schedule, size, batch=batch)
        per_volume = flops / batch
        peak_mb = peak_bytes / 2**20
        data_key = (dataset, size, data_opts)
        if data_key not in volumes:
            volumes[data_key] = _volumes(registry, dataset, size, data_root, data_opts)
        out.append(GroupCost(
            dataset=dataset, size=size, backbone=backbone, strategy=strategy, schedule=schedule, runs=len(members),
            volumes=volumes[data_key], gflop_per_volume=per_volume / 1e9,
            seconds_per_volume=per_volume / rate, peak_mb=peak_mb, fits=peak_mb < 0.9 * limit,
        ))  # fmt: skip
    return out


def render(costs: Sequence[GroupCost], device: str) -> str:
    """The estimate as a table plus a total line."""
    from tabulate import tabulate

    rows = []
    for c in costs:
        seconds = "?" if c.seconds is None else f"{c.seconds:.1f}"
        rows.append([c.dataset, c.size, c.backbone, c.strategy + (f" [{c.schedule}]" if c.schedule else ""), c.runs,
                     c.volumes if c.volumes is not None else "?", f"{c.gflop_per_volume:.1f}",
                     f"{1000 * c.seconds_per_volume:.0f}", seconds, f"{c.peak_mb:.0f}", "yes" if c.fits else "NO"])  # fmt: skip
    table = tabulate(rows, headers=["dataset", "size", "backbone", "strategy", "runs", "volumes", "GFLOP/vol",
                                    "ms/vol", "extract s", "peak MB", "fits"], tablefmt="simple")  # fmt: skip
    known = [c.seconds for c in costs if c.seconds is not None]
    total = f"{sum(known):.0f} s" + (" (+ groups of unknown size)" if len(known) < len(costs) else "")
    too_big = [f"{c.backbone}/{c.strategy}@{c.size}" for c in costs if not c.fits]
    lines = [table, "", f"estimated feature extraction on {device}: {total}; probe training per run is extra "
             "(cached linear: ~1 ms per step; linear-aug and finetune: a forward (and backward) per step; "
             "segmentation protocols and FeatDice: the training table below)."]  # fmt: skip
    if too_big:
        lines.append(f"will not fit in {available_mb(device):.0f} MB: {', '.join(too_big)}")
    return "\n".join(lines)
