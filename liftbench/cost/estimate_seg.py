"""What the segmentation runs of a grid will cost (``liftbench run ... --dry-run``'s "training (per run)" table).

Why a second table: a segmentation run's cost is its training, not a feature extraction. ``iterations``
updates of ``batch`` volumes, each a backbone forward at the network resolution (``seg-linear``; none for
``seg-linear-cached``, which extracts every split once and shares it across seeds; forward + backward ≈ 3×
the forward for ``seg-finetune``) plus :class:`ProgressiveUpHead`'s forward and backward, plus the scoring
after updates 1, 1 + ``eval_every``, … (selection split, and the test split whenever the selection improves —
charged at every evaluation, an upper bound). FeatDice trains nothing: one forward per test volume (and per
validation volume with ``select_threshold``) at the dataset's FeatDice in-plane size (LIDC 640²).

FLOPs are counted on the meta device at the run's real shape (depth D, in-plane ``inplane["network"]``), the
decoder's forward and backward both counted (not a 3× rule). Seconds: backbone FLOPs at the lifting's rate
from :func:`liftbench.cost.estimate.calibrate`; decoder FLOPs at a rate measured here with one real decoder update
(forward, loss, backward, AdamW) at the run's widths, grid and batch, depth cut — 3D convolutions and 2D ViT matmuls
run at different rates (``liftbench bench --seg``: the head ran at ~150% of the matmul peak on 2 CPU cores).
Data loading, augmentation, resizing and the 21-threshold Dice sweep are not counted.

Honesty (results/bench/estimate_vs_actual.md, "Segmentation training"): on 2 CPU cores, synthetic 32³,
vit-tiny-shapes 2d, ``iterations=20 warmup=2 hidden=64`` (batch 8 / 4), estimated ÷ measured run time was 0.85
for ``seg-linear-cached`` (extraction included), 1.12 for ``seg-linear`` and 1.0 for ``seg-finetune``; two
estimates of the same grid differ by ~10% (calibration noise). Calibrating the decoder at batch 1 on a 4³ grid
instead overestimated by 3–4×, hence :func:`head_rate`'s cut. No peak-memory figure: see ``liftbench bench --seg``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from liftbench.cost.estimate import _meta_lifted, backbone_rate, load_dataset
from liftbench.plugin.registry import Registry
from liftbench.segmentation.splits import carved_count

SEG_MODES = {"seg-linear": "frozen", "seg-linear-cached": "cached", "seg-finetune": "finetune"}
FEATDICE = "featdice"
BACKWARD_FACTOR = 3  # forward + backward ≈ 3 forwards (backbone of seg-finetune)
CAL_FLOPS = 2e10  # about what the decoder calibration's one timed update may cost (0.1–0.3 s on 2 CPU cores)


@dataclass
class SegCost:
    """The estimated training cost of the runs of one (group, protocol, options) — they differ only by seed."""

    dataset: str
    backbone: str
    strategy: str
    protocol: str
    runs: int
    updates: int  # 0 for featdice
    batch: int
    gflop_per_update: float  # featdice: per volume
    seconds_per_run: float | None  # None: the dataset could not be loaded here
    once_seconds: float | None = 0.0  # seg-linear-cached's one extraction, shared by its runs
    assumed: bool = False  # the dataset could not be loaded: its shape is guessed (a size³ cube)

    @property
    def seconds(self) -> float | None:
        if self.seconds_per_run is None or self.once_seconds is None:
            return None
        return self.runs * self.seconds_per_run + self.once_seconds


@dataclass
class _Shape:
    """What the estimate needs from the dataset: volumes per split, depth, in-plane sizes, output channels."""

    counts: dict[str, int] | None
    depth: int
    side: dict[str, int]  # "network" / "featdice" -> in-plane size
    classes: int  # decoder output channels: 1 for binary masks


def _shape(data, size: int, options: dict) -> _Shape:
    if data is None:  # not loadable here: assume a cube of the grid's size, binary masks, the declared FeatDice size
        return _Shape(None, size, {"network": size, "featdice": int(options.get("featdice_size", size))}, 1)
    volumes = data.splits["train"].volumes
    depth, stored = int(volumes.shape[-3]), int(volumes.shape[-1])
    names = data.mask_names
    return _Shape(counts={name: len(split) for name, split in data.splits.items()}, depth=depth,
                  side={use: int(data.inplane.get(use, stored)) for use in ("network", "featdice")},
                  classes=1 if len(names) == 2 else len(names))  # fmt: skip


def backbone_trace(registry: Registry, backbone: str, strategy: str, schedule: str, depth: int, side: int, layers: str = "last"):
    """(forward FLOPs per volume, dense maps' channels, feature grid (d, h, w)) at ``(D, side, side)``, on meta."""
    from liftbench.cost.bench.flops import count_flops
    from liftbench.segmentation.dense import configure, dense_maps

    _, lifted = _meta_lifted(registry, backbone, strategy, schedule)
    try:
        configure(lifted, layers)
        x = torch.zeros(1, lifted.in_chans, depth, side, side, device="meta")
        shapes = []
        with torch.no_grad():
            flops = count_flops(lambda: shapes.extend(m.shape for m in dense_maps(lifted, x)))
    finally:
        lifted.collect = ()
        lifted.unlift()
    return float(flops), sum(s[1] for s in shapes), tuple(shapes[0][2:])


def _head(channels: int, classes: int, hidden: int, up_blocks: int, device: str):
    from liftbench.segmentation.decoder import ProgressiveUpHead

    with torch.device(device):
        return ProgressiveUpHead(channels, classes, hidden=hidden, up_blocks=up_blocks)


def head_flops(channels: int, classes: int, hidden: int, up_blocks: int, grid: tuple, out: tuple) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs of the decoder for one volume's feature grid, counted on meta."""
    from torch.utils.flop_counter import FlopCounterMode

    head = _head(channels, classes, hidden, up_blocks, "meta")
    features = torch.zeros(1, channels, *grid, device="meta")
    with FlopCounterMode(display=False) as forward:
        with torch.no_grad():
            head(features, size=out)
    with FlopCounterMode(display=False) as both:
        head(features, size=out).float().mean().backward()
    return float(forward.get_total_flops()), float(both.get_total_flops())


def head_rate(channels: int, classes: int, hidden: int, up_blocks: int, grid: tuple, batch: int, device: str) -> float:
    """FLOP/s of one real decoder update (forward, loss, backward, AdamW step, after a warm-up) on ``device``, at the
    run's widths, in-plane grid and batch, with depth (then batch) cut so it costs about ``CAL_FLOPS``: a batch-1
    update on a tiny grid runs at a fifth of the rate of the real one (per-layer overheads), so the cut keeps the
    shape the kernels see."""
    _, per_volume = head_flops(channels, classes, hidden, up_blocks, grid, _out(grid, up_blocks))
    per_slice = per_volume / grid[0]
    depth = int(min(grid[0], max(1, CAL_FLOPS // (batch * per_slice))))
    batch = int(min(batch, max(1, CAL_FLOPS // (depth * per_slice))))
    small = (depth, *grid[1:])
    out = _out(small, up_blocks)
    head = _head(channels, classes, hidden, up_blocks, device)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-4)
    features = torch.rand(batch, channels, *small, device=device)
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        loss = head(features, size=out).float().square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    _, flops = head_flops(channels, classes, hidden, up_blocks, small, out)
    return batch * flops / max(seconds[-1], 1e-9)


def _out(grid: tuple, up_blocks: int) -> tuple:
    return (grid[0], grid[1] * 2**up_blocks, grid[2] * 2**up_blocks)


def _eval_count(iterations: int, every: int) -> int:
    from liftbench.protocols.segment import _eval_steps

    return len(_eval_steps(iterations, every))


def _select_count(counts: dict[str, int], options: dict) -> tuple[int, int, bool]:
    """(train, selection, selected on test) volume counts, as :func:`selection_splits` would carve them."""
    train = counts["train"]
    if options["selection"] == "test":
        return train, counts["test"], True
    if counts.get("val"):
        return train, counts["val"], False
    held = carved_count(train, options["val_fraction"]) if train > 1 else 1
    return train - held, held, False


class _Estimator:
    """Per-grid caches: datasets, meta traces and calibrations are computed once each."""

    def __init__(self, registry: Registry, device: str, data_root: str | None, rates: dict) -> None:
        self.registry, self.device, self.data_root, self.rates = registry, device, data_root, rates
        self.shapes: dict[tuple, _Shape] = {}
        self.traces: dict[tuple, tuple] = {}
        self.head_rates: dict[tuple, float] = {}

    def shape(self, spec) -> _Shape:
        key = (spec.dataset, spec.size, spec.dataset_options)
        if key not in self.shapes:
            entry = self.registry.get("dataset", spec.dataset)
            declared = {**entry.options, **spec.data_options}
            declared.update({k: o.default for k, o in (entry.parameters or {}).items() if k not in declared})
            self.shapes[key] = _shape(load_dataset(self.registry, *key[:2], self.data_root, key[2]), spec.size, declared)
        return self.shapes[key]

    def backbone(self, spec, depth: int, side: int, layers: str) -> tuple[float, int, tuple, float]:
        """(FLOPs per volume, channels, grid, FLOP/s) of the backbone's forward at ``(depth, side, side)``."""
        key = (spec.backbone, spec.strategy, spec.schedule, depth, side, layers)
        if key not in self.traces:
            self.traces[key] = backbone_trace(self.registry, *key)
        rate = backbone_rate(self.registry, spec.backbone, spec.strategy, spec.schedule, spec.size, self.device, self.rates)
        return (*self.traces[key], rate)

    def seg(self, spec, runs: int) -> SegCost:
        from liftbench.protocols.segment import batch_size
        from liftbench.segmentation.decoder import up_blocks_for

        mode, options, shape = SEG_MODES[spec.protocol], spec.protocol_options, self.shape(spec)
        side = shape.side["network"]
        fwd, channels, grid, rate = self.backbone(spec, shape.depth, side, options.get("layers", "last"))
        up_blocks = up_blocks_for(grid[-1], side)
        finetune = mode == "finetune"
        batch = batch_size(options, spec.dataset, finetune)
        if shape.counts is not None:
            batch = min(batch, _select_count(shape.counts, options)[0])
        hkey = (channels, shape.classes, options["hidden"], up_blocks, grid)
        head_fwd, head_both = head_flops(*hkey, out=(shape.depth, side, side))
        if (*hkey, batch) not in self.head_rates:
            self.head_rates[(*hkey, batch)] = head_rate(*hkey, batch, self.device)
        hrate = self.head_rates[(*hkey, batch)]
        bb_update = {"frozen": fwd, "cached": 0.0, "finetune": BACKWARD_FACTOR * fwd}[mode]
        update_s = batch * (bb_update / rate + head_both / hrate)
        flops = batch * (bb_update + head_both)
        seconds = once = None
        if shape.counts is not None:
            _, select, on_test = _select_count(shape.counts, options)
            scored = _eval_count(options["iterations"], options["eval_every"]) * (select + (0 if on_test else shape.counts["test"]))
            per_volume = (0.0 if mode == "cached" else fwd / rate) + head_fwd / hrate
            seconds = options["iterations"] * update_s + scored * per_volume
            once = sum(shape.counts.values()) * fwd / rate if mode == "cached" else 0.0
        return SegCost(spec.dataset, spec.backbone, _strategy(spec), spec.protocol, runs, options["iterations"], batch,
                       flops / 1e9, seconds, once, assumed=shape.counts is None)  # fmt: skip

    def featdice(self, spec, runs: int) -> SegCost:
        options, shape = spec.protocol_options, self.shape(spec)
        fwd, _, _, rate = self.backbone(spec, shape.depth, shape.side["featdice"], "last")
        seconds = None
        if shape.counts is not None:
            volumes = shape.counts["test"]
            if options.get("select_threshold"):
                volumes += _select_count(shape.counts, {**options, "selection": "val"})[1]
            seconds = volumes * fwd / rate
        return SegCost(spec.dataset, spec.backbone, _strategy(spec), spec.protocol, runs, 0, 0, fwd / 1e9, seconds,
                       assumed=shape.counts is None)  # fmt: skip


def _strategy(spec) -> str:
    return spec.strategy + (f" [{spec.schedule}]" if spec.schedule else "")


def estimate_seg(registry: Registry, runs: Sequence, device: str = "cpu", data_root: str | None = None,
                 rates: dict | None = None) -> list[SegCost]:  # fmt: skip
    """One :class:`SegCost` per (extraction group, segmentation protocol, options) of the runs that will execute."""
    from liftbench.run.spec import group_key

    groups: dict[tuple, list] = {}
    for run in runs:
        spec = run.spec
        if run.skip_reason or (spec.protocol not in SEG_MODES and spec.protocol != FEATDICE):
            continue
        groups.setdefault((group_key(spec), spec.protocol, spec.options), []).append(spec)
    estimator = _Estimator(registry, device, data_root, {} if rates is None else rates)
    out = []
    for (_, protocol, _), specs in groups.items():
        cost = (estimator.featdice if protocol == FEATDICE else estimator.seg)(specs[0], len(specs))
        out.append(cost)
    return out


def render_seg(costs: Sequence[SegCost], device: str) -> str:
    """The "training (per run)" table plus a total line; empty when the grid has no segmentation run."""
    if not costs:
        return ""
    from tabulate import tabulate

    def fmt(value: float | None) -> str:
        return "?" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"

    rows = [[c.dataset, c.backbone, c.strategy, c.protocol, c.runs, f"{c.updates} x {c.batch}" if c.updates else "-",
             f"{c.gflop_per_update:.1f}" + ("*" if c.assumed else ""), fmt(c.seconds_per_run), fmt(c.seconds)] for c in costs]  # fmt: skip
    table = tabulate(rows, headers=["dataset", "backbone", "strategy", "protocol", "runs", "updates x batch",
                                    "GFLOP/update", "s/run", "total s"], tablefmt="simple")  # fmt: skip
    known = [c.seconds for c in costs if c.seconds is not None]
    total = f"{sum(known):.0f} s" + (" (+ runs on data not loadable here)" if len(known) < len(costs) else "")
    lines = ["training (per run):", table, ""]
    if any(c.assumed for c in costs):
        lines.append("* data not loadable here: shape assumed (depth = in-plane = size, binary masks)")
    return "\n".join([*lines, f"estimated segmentation training and scoring on {device}: {total} "
                      "(featdice: GFLOP per volume at its in-plane size; seg-linear-cached's total includes its one "
                      "extraction; data loading, augmentation and the Dice sweeps are not counted)"])  # fmt: skip
