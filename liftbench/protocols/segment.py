"""``seg-linear`` and ``seg-finetune``: a lifted backbone + the authors' 3D decoder, trained for segmentation.

As the authors' released code trains Table 3 (docs/segmentation.md): dense patch maps of the chosen
blocks (:mod:`liftbench.segmentation.dense`) feed :class:`~liftbench.segmentation.decoder.ProgressiveUpHead`;
the loss is BCE + soft Dice for binary masks, 0.5·CE + Dice without background for multi-class ones;
AdamW (weight decay on every parameter), the authors' warm-up + cosine (:mod:`liftbench.segmentation.schedule`)
stepped per update; the selection split is scored after updates 1, 1 + ``eval_every``, … and after the last.

* ``seg-linear`` — the backbone frozen (no gradients), in eval mode unless ``backbone_mode=train`` (the
  authors' code leaves it in train mode, so DINOv3 rescales RoPE coordinates: add ``rope_rescale=2``).
* ``seg-finetune`` — every parameter trains; the backbone's learning rate is ``backbone_lr_scale`` (0.1) ×
  the head's; gradient clipping, decoder dropout, bf16 and activation checkpointing are options.
* ``seg-linear-cached`` — ``seg-linear`` without augmentation and in eval mode, on frozen features
  computed once per (dataset, backbone, lifting, layers, dtype) and cached on disk: seeds and reruns skip
  the backbone entirely. Same decoder, loss, schedule and selection.

Selection (:mod:`liftbench.segmentation.splits`): on a validation split by default, on the test set with
``selection=test`` (the authors). Binary masks pick the best of 21 probability thresholds on the same split.
When the selection split improves, the test set is scored right then, so no model copy is kept.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from liftbench.datasets.volumes import VolumeDataset, VolumeSplit
from liftbench.errors import UsageError
from liftbench.lifting.rope_rescale import ROPE_SEED, check_factor, rope_rescaling
from liftbench.precision import autocast
from liftbench.protocols.finetune import lift_for_training
from liftbench.protocols.training import adamw
from liftbench.run.context import ProtocolResult, RunContext
from liftbench.run.feature_cache import cache_key, refreshed, stale_ok
from liftbench.run.results import replace_atomic
from liftbench.segmentation.batches import batches, resize_inplane, seg_batch
from liftbench.segmentation.decoder import ProgressiveUpHead, up_blocks_for
from liftbench.segmentation.dense import configure, dense_maps
from liftbench.segmentation.dice import LIDC_THRESHOLDS, mean_dice, per_volume_dice, per_volume_frame, threshold_sweep
from liftbench.segmentation.losses import seg_loss
from liftbench.segmentation.schedule import scheduler
from liftbench.segmentation.splits import selection_splits

# The released configs' batch sizes: (frozen, fine-tuned); other datasets take DEFAULT_BATCH.
AUTHORS_BATCH = {"lidc": (12, 4), "mmwhs-ct": (8, 8), "mmwhs-mri": (8, 8)}
DEFAULT_BATCH = (8, 4)
CACHE_VERSION = 2
AUGMENT_STREAM = 1  # the augmentation generator is seeded by (seed, this): a stream apart from the batch order



def batch_size(options: dict, dataset: str, finetune: bool) -> int:
    if options["batch_size"] > 0:
        return options["batch_size"]
    return AUTHORS_BATCH.get(dataset, DEFAULT_BATCH)[int(finetune)]


def _targets(dataset: VolumeDataset, split: VolumeSplit, index: np.ndarray) -> torch.Tensor:
    """Masks of ``index`` at network resolution (nearest), ``(B, D, S, S)``."""
    mask = torch.as_tensor(split.masks[index]).long()
    size = dataset.inplane.get("network")
    if size is None:
        return mask
    return resize_inplane(torch.zeros(mask.shape[0], 1, *mask.shape[1:]), mask, size)[1]


class Scorer:
    """Per-volume Dice of a split under the current model: ``(N, T)`` over thresholds for one logit channel,
    ``(N, K − 1)`` per class otherwise; and the split's figure (best threshold's mean, or the class mean)."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self.binary = classes == 2

    @torch.no_grad()
    def per_volume(self, logits_and_truth: Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]], count: int, eval_batch: int) -> np.ndarray:
        rows = []
        for index in batches(count, eval_batch):
            logits, truth = logits_and_truth(index)
            logits = logits.float().cpu()
            if self.binary:
                rows.append(threshold_sweep(torch.sigmoid(logits[:, 0]), truth, LIDC_THRESHOLDS))
            else:
                rows.append(per_volume_dice(logits.argmax(dim=1), truth, self.classes))
        return np.concatenate(rows)

    def figure(self, scores: np.ndarray) -> tuple[float, float | None]:
        """(Dice, threshold): the best threshold's mean Dice for binary masks, else the mean Dice."""
        if not self.binary:
            return mean_dice(scores), None
        means = [mean_dice(scores[:, [j]]) for j in range(scores.shape[1])]
        if all(math.isnan(m) for m in means):
            return float("nan"), None
        best = int(np.nanargmax(means))
        return means[best], LIDC_THRESHOLDS[best]

    def frame(self, scores: np.ndarray, names, ids=None) -> pd.DataFrame:
        columns = [f"t={t:g}" for t in LIDC_THRESHOLDS] if self.binary else list(names[1:])
        return per_volume_frame(scores, columns, ids)


def _eval_steps(total: int, every: int) -> set[int]:
    """Updates after which the selection split is scored: 1, 1 + every, ... and the last (the authors')."""
    return {u for u in range(1, total + 1) if (u - 1) % every == 0} | {total}


def _cache_path(ctx: RunContext, lifted, options: dict, weights_sha: str, data: dict[str, str]) -> Path:
    """Where the frozen maps are cached: keyed by everything they depend on, the data's own fingerprint included
    (``data``: split -> :meth:`VolumeSplit.fingerprint`), so edited files never meet stale features."""
    spec = ctx.spec
    parts = {"v": CACHE_VERSION, "dataset": spec.dataset, "size": spec.size, "dataset_options": spec.dataset_options,
             "backbone": spec.backbone, "weights_sha256": weights_sha, "lifting": lifted.describe(),
             "layers": options["layers"], "dtype": options["dtype"], "data": data}  # fmt: skip
    return Path(ctx.cache_dir) / "seg-features" / f"{cache_key(parts)}.pt"  # parts' own "v" overrides cache_key's


@torch.inference_mode()
def _cached_maps(ctx: RunContext, lifted, dataset: VolumeDataset, options: dict, weights_sha: str, data: dict[str, str]) -> tuple[dict, float]:
    """Frozen dense maps ``{split: (N, C, d, h, w)}`` of every split (eval mode), from the disk cache if present
    (memory-mapped: LIDC's maps can be tens of GB, and a run reads only its batches' rows)."""
    path = _cache_path(ctx, lifted, options, weights_sha, data)
    if path.exists() and stale_ok(path.stem, ctx.refresh):
        stored = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if all(len(stored[s]) == len(split) for s, split in dataset.splits.items()):
            ctx.detail(f"segmentation feature cache hit {path.name}")
            return {s: stored[s] for s in dataset.splits}, float(stored["volumes_per_second"])
        ctx.detail(f"segmentation feature cache entry {path.name} does not match the data; recomputing")
    model = lifted.model
    mean, std = ctx.normalisation(model)
    lifted.eval()
    x, _ = seg_batch(dataset, dataset.splits["train"], [0], "network", mean, std)
    with autocast(ctx.device, options["dtype"]):
        probe = torch.cat(dense_maps(lifted, x.to(ctx.device)), dim=1)
    need = probe.numel() * 4 * sum(len(s) for s in dataset.splits.values())
    free = shutil.disk_usage(path.parent if path.parent.exists() else Path(ctx.cache_dir).resolve().anchor).free
    if need > 0.8 * free:
        raise UsageError(f"seg-linear-cached would store {need / 2**30:.1f} GiB of features in {path.parent}, but only "
                         f"{free / 2**30:.1f} GiB are free; use seg-linear (features recomputed every step) or --cache-dir")  # fmt: skip
    start, maps = time.perf_counter(), {}
    for name, split in dataset.splits.items():
        maps[name] = torch.empty((len(split), *probe.shape[1:]), dtype=torch.float32)  # filled in place: no 2x peak
        for index in batches(len(split), options["eval_batch"]):
            x, _ = seg_batch(dataset, split, index, "network", mean, std)
            with autocast(ctx.device, options["dtype"]):
                maps[name][index[0] : index[-1] + 1] = torch.cat(dense_maps(lifted, x.to(ctx.device)), dim=1).float().cpu()
    vps = sum(len(s) for s in dataset.splits.values()) / max(time.perf_counter() - start, 1e-9)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomic(path, lambda tmp: torch.save({**maps, "volumes_per_second": torch.tensor(vps)}, tmp))
    refreshed(path.stem)
    ctx.detail(f"segmentation feature cache miss: {sum(len(s) for s in dataset.splits.values())} volumes at {vps:.2f} volumes/s -> {path.name}")
    return maps, vps


@contextmanager
def _deterministic_cudnn():
    """cuDNN in deterministic mode, no autotuning, as the authors train (restored afterwards). GPU results still
    vary in the last digits: trilinear upsampling's backward has no deterministic CUDA kernel."""
    previous = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous


def _check(options: dict, dataset: VolumeDataset, protocol: str) -> None:
    if not dataset.has_masks:
        raise UsageError(f"{protocol} needs masks; dataset {dataset.name!r} has none")
    check_factor(options["rope_rescale"])
    for name in ("iterations", "eval_every", "eval_batch"):
        if options[name] < 1:
            raise UsageError(f"option {name} must be at least 1, got {options[name]}")
    if options["batch_size"] < 0:
        raise UsageError(f"option batch_size must be 0 (the authors' per dataset) or positive, got {options['batch_size']}")
    if options["hidden"] < 16 or options["hidden"] % 16:
        raise UsageError(f"option hidden must be a positive multiple of 16 (four up-blocks halve it), got {options['hidden']}")
    if not 0.0 <= options["dropout"] < 1.0:
        raise UsageError(f"option dropout must lie in [0, 1), got {options['dropout']}")
    if not 0 <= options["warmup"] < options["iterations"]:
        raise UsageError(f"option warmup must lie in [0, iterations), got {options['warmup']}")


def train(ctx: RunContext, mode: str) -> ProtocolResult:
    """Train and select; ``mode`` is ``frozen``, ``cached`` or ``finetune``."""
    options, spec, device = ctx.options, ctx.spec, ctx.device
    dataset = ctx.dataset()
    _check(options, dataset, spec.protocol)
    finetune, cached = mode == "finetune", mode == "cached"
    if cached and (options["augment"] != "none" or options["backbone_mode"] != "eval"):
        raise UsageError("seg-linear-cached trains on fixed frozen features: it takes augment=none and backbone_mode=eval")
    names = dataset.mask_names
    scorer = Scorer(len(names))
    train_split, select_split, how = selection_splits(dataset, options["selection"], options["val_fraction"], options["split_seed"])
    test_split = dataset.splits["test"]
    if len(train_split) == 0 or len(test_split) == 0:
        raise UsageError(f"dataset {dataset.name!r} needs training and test volumes for {spec.protocol}")
    torch.manual_seed(spec.seed)
    model, weights = ctx.backbone(fresh=finetune)
    mean, std = ctx.normalisation(model)
    batch = min(batch_size(options, dataset.name, finetune), len(train_split))
    order_rng = np.random.default_rng(spec.seed)  # batch order, apart from the augmentation draws: changing
    augment_rng = np.random.default_rng([spec.seed, AUGMENT_STREAM])  # augment= must not reorder the batches
    data = {name: split.fingerprint for name, split in dataset.splits.items()}
    stack = ExitStack()
    stack.enter_context(_deterministic_cudnn())
    lifted = lift_for_training(ctx, model, finetune and options["checkpoint"])
    try:
        configure(lifted, options["layers"])
        lifted.to(device)
        if cached:
            stored, extraction_vps = _cached_maps(ctx, lifted, dataset, options, weights.sha256, data)
            # (features, rows): a split's rows of a cached tensor, indexed per batch (no copy of a carved split)
            everything = {name: np.arange(len(t)) for name, t in stored.items()}
            source = "val" if how["selected_on"] == "val" else "test"
            feature_rows = {"train": (stored["train"], everything["train"]), "select": (stored[source], everything[source]),
                            "test": (stored["test"], everything["test"])}  # fmt: skip
            if "val_carved_from_train" in how:  # the carved split's rows of the cached training features
                order = np.random.default_rng(options["split_seed"]).permutation(len(dataset.splits["train"]))
                count = how["val_carved_from_train"]
                feature_rows["select"] = (stored["train"], np.sort(order[:count]))
                feature_rows["train"] = (stored["train"], np.sort(order[count:]))
            channels, feature_side = stored["train"].shape[1], stored["train"].shape[-1]
        else:
            extraction_vps = None
            with torch.no_grad():
                x, _ = seg_batch(dataset, train_split, [0], "network", mean, std)
                probe = dense_maps(lifted.eval(), x.to(device))
                channels, feature_side = sum(m.shape[1] for m in probe), probe[0].shape[-1]
        up_blocks = up_blocks_for(feature_side, _targets(dataset, train_split, np.arange(1)).shape[-1])
        if options["hidden"] % 2**up_blocks:
            raise UsageError(f"option hidden={options['hidden']} must be divisible by {2**up_blocks} ({up_blocks} up-blocks for this backbone's stride)")
        torch.manual_seed(spec.seed)  # the head's init: the same whether or not the backbone was already built
        head = ProgressiveUpHead(channels, 1 if scorer.binary else len(names), hidden=options["hidden"], dropout=options["dropout"], up_blocks=up_blocks).to(device)
        groups = [{"params": list(head.parameters()), "lr": options["lr"]}]
        if finetune:
            groups.append({"params": list(lifted.parameters()), "lr": options["lr"] * options["backbone_lr_scale"]})
        else:
            lifted.requires_grad_(False)
        optimizer = adamw(groups, options["lr"], options["weight_decay"])  # betas (0.9, 0.999), as the authors
        lr_schedule = scheduler(optimizer, options["iterations"], options["warmup"])
        if options["backbone_mode"] == "train" or finetune:
            stack.enter_context(rope_rescaling(lifted, options["rope_rescale"], torch.Generator().manual_seed(spec.seed + ROPE_SEED)))
        splits = {"train": train_split, "select": select_split, "test": test_split}

        def maps_of(which: str, index: np.ndarray, training: bool = False, augment: str = "none"):
            """The decoder's input maps of volumes ``index`` of a split and their masks at network resolution
            (each mask read and resized once)."""
            split = splits[which]
            if cached:
                features, rows = feature_rows[which]
                return [features[rows[index]].to(device)], _targets(dataset, split, index)
            x, target = seg_batch(dataset, split, index, "network", mean, std, augment=augment, rng=augment_rng)
            grad = training and finetune
            with torch.set_grad_enabled(grad), autocast(device, options["dtype"]):
                out = dense_maps(lifted, x.to(device))
            return (out if grad else [m.float() for m in out]), target

        def logits_of(which: str):
            def run(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
                maps, truth = maps_of(which, index)
                with autocast(device, options["dtype"]) if finetune else nullcontext():
                    return head(maps, size=tuple(truth.shape[1:])), truth
            return run

        def score(which: str) -> np.ndarray:
            lifted.eval()
            head.eval()
            return scorer.per_volume(logits_of(which), len(splits[which]), options["eval_batch"])

        evaluate_after = _eval_steps(options["iterations"], options["eval_every"])
        best = {"dice": -math.inf, "step": 0, "threshold": None, "test": None}
        order, position, train_time, trained = order_rng.permutation(len(train_split)), 0, 0.0, 0
        for update in range(1, options["iterations"] + 1):
            if position >= len(order):
                order, position = order_rng.permutation(len(train_split)), 0
            index = np.sort(order[position : position + batch])
            position += batch
            start = time.perf_counter()
            head.train()
            lifted.train() if (finetune or options["backbone_mode"] == "train") else lifted.eval()
            maps, target = maps_of("train", index, training=True, augment=options["augment"])
            target = target.to(device)
            with autocast(device, options["dtype"]) if finetune else nullcontext():
                logits = head(maps, size=tuple(target.shape[1:]))
            loss = seg_loss(logits.float(), target, len(names))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss ({loss.item()}) at update {update}; lower lr or use dtype=fp32")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if options["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], options["grad_clip"])
            optimizer.step()
            lr_schedule.step()
            train_time, trained = train_time + time.perf_counter() - start, trained + len(index)
            if update in evaluate_after:
                with torch.no_grad():
                    selected = score("select")
                    dice, threshold = scorer.figure(selected)
                    if dice > best["dice"]:
                        test = selected if how["selected_on"] == "test" else score("test")
                        best = {"dice": dice, "step": update, "threshold": threshold, "test": test}
                ctx.detail(f"{spec.label()} update {update}: {how['selected_on']} Dice {dice:.4f} (best {best['dice']:.4f} at {best['step']})")
    finally:
        stack.close()
        lifted.collect = ()
        lifted.eval()  # the shared backbone goes back in eval mode, whatever happened
        lifted.unlift()
    if best["test"] is None:
        raise ValueError(f"{how['selected_on']} Dice undefined at every evaluation: no {how['selected_on']} volume has a non-empty mask")
    if scorer.binary:
        test_dice = mean_dice(best["test"][:, [LIDC_THRESHOLDS.index(best["threshold"])]])
    else:
        test_dice = mean_dice(best["test"])
    metrics = [("test", "dice", test_dice)]
    if how["selected_on"] != "test":
        metrics.append((how["selected_on"], "dice", best["dice"]))
    notes = {
        "threshold": None if best["threshold"] is None else float(best["threshold"]),
        "backbone_mode": "train" if finetune or options["backbone_mode"] == "train" else "eval",
        "selected_iteration": best["step"], "batch_size": batch, "up_blocks": up_blocks,
        "augment": "none" if cached or dataset.augment is None else options["augment"],
        "train_volumes_per_second": trained / max(train_time, 1e-9), "classes": list(names), "data": data,
        **{k: v for k, v in how.items() if k != "selected_on"},
    }  # fmt: skip
    return ProtocolResult(metrics=metrics, selected_on=how["selected_on"], volumes_per_second=extraction_vps,
                          probabilities=scorer.frame(best["test"], names, test_split.ids), notes=notes)  # fmt: skip


def run_linear(ctx: RunContext) -> ProtocolResult:
    return train(ctx, "frozen")


def run_cached(ctx: RunContext) -> ProtocolResult:
    return train(ctx, "cached")


def run_finetune(ctx: RunContext) -> ProtocolResult:
    return train(ctx, "finetune")
