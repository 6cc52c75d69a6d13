"""Train the shapes backbones on the generated 2D task and write their weights: one command, on CPU.

    python -m liftbench.backbones.shapes.train                       # every model, into liftbench/backbones/shapes/weights
    python -m liftbench.backbones.shapes.train --model convnext-tiny-shapes   # that one only; the others' files stay
    python -m liftbench.backbones.shapes.train --model vit-tiny-shapes --out /tmp/shapes

Every step draws a fresh batch from :func:`liftbench.backbones.shapes.images.make_images` (seeded by the step,
so the run is deterministic and never sees an image twice) and feeds it exactly as liftbench feeds a
slice: grayscale repeated to 3 channels, normalised with the model's own mean/std
(:func:`liftbench.datasets.volumes.prepare_batch`). The backbone's pooled feature (the ViT's CLS token after
its final norm; the ResNet's average-pooled map; the ConvNeXt's average-pooled map after its head norm) goes to four linear heads trained together: the shape
class (main task), the 4×4 position cell, the size tercile and a regression of centre, size and
orientation. The heads are dropped afterwards; only the backbone is saved (fp32 safetensors).

Held-out accuracy is measured on images drawn from a seed the training never uses. The script writes
``<name>.safetensors``, ``training.json`` (one record per model) and ``README.md`` into ``--out``; when
``--out`` is the package's own weights folder it also updates the expected file hashes in
:mod:`liftbench.backbones.shapes.load`, so ``--weights pretrained`` accepts the new files. ``--model NAME`` trains
and writes that model only: the other models' weight files are not touched and their records in
``training.json`` (and so their README rows) are kept as they are.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from liftbench.backbones.shapes import images as shapes_images
from liftbench.backbones.shapes.models import ARCHITECTURES
from liftbench.backbones.timm_backbones import file_sha256, normalisation, state_dict_sha256
from liftbench.datasets.volumes import prepare_batch

DEFAULT_OUT = Path(__file__).resolve().parent / "weights"
EVAL_SEED = 1_000_003  # held-out images; training seeds are seed * 100_000 + step < this
EVAL_COUNT = 3000


@dataclass(frozen=True)
class Recipe:
    """How one model is trained. AdamW, linear warm-up then cosine decay to 0."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup: int
    seed: int = 0


RECIPES = {
    "vit-tiny-shapes": Recipe(steps=1600, batch_size=128, lr=1.5e-3, weight_decay=0.05, warmup=100),
    "resnet-tiny-shapes": Recipe(steps=3000, batch_size=128, lr=3e-3, weight_decay=1e-4, warmup=100),
    "convnext-tiny-shapes": Recipe(steps=3000, batch_size=128, lr=3e-3, weight_decay=0.05, warmup=100),
}


class Trainee(nn.Module):
    """The backbone and the training heads on its pooled feature."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        dim = backbone.num_features
        self.shape = nn.Linear(dim, shapes_images.NUM_CLASSES)
        self.cell = nn.Linear(dim, shapes_images.GRID**2)
        self.size = nn.Linear(dim, len(shapes_images.SIZE_BINS) + 1)
        self.target = nn.Linear(dim, len(shapes_images.TARGETS))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feature = self.backbone(x)
        return {
            "shape": self.shape(feature),
            "cell": self.cell(feature),
            "size": self.size(feature),
            "target": self.target(feature),
        }


def model_input(batch: shapes_images.ImageBatch, mean, std) -> torch.Tensor:
    """Images ``(N, H, W)`` → ``(N, 3, H, W)``, through liftbench's own slice preprocessing."""
    volumes = torch.from_numpy(batch.images)[:, None, None]  # (N, 1, D=1, H, W)
    return prepare_batch(volumes, mean, std)[:, :, 0]


def losses(out: dict[str, torch.Tensor], batch: shapes_images.ImageBatch) -> dict[str, torch.Tensor]:
    shape = torch.from_numpy(batch.shape)
    cell = torch.from_numpy(batch.cell)
    size = torch.from_numpy(batch.size)
    target = torch.from_numpy(batch.target)
    mask = torch.from_numpy(batch.target_mask).float()
    regression = ((out["target"] - target) ** 2 * mask).sum() / mask.sum().clamp_min(1.0)
    return {
        "shape": F.cross_entropy(out["shape"], shape),
        "cell": F.cross_entropy(out["cell"], cell, ignore_index=-1),
        "size": F.cross_entropy(out["size"], size, ignore_index=-1),
        "target": regression,
    }


LOSS_WEIGHTS = {"shape": 1.0, "cell": 0.5, "size": 0.5, "target": 1.0}


def learning_rate(step: int, recipe: Recipe) -> float:
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate(trainee: Trainee, batch: shapes_images.ImageBatch, mean, std, chunk: int = 500) -> dict[str, float]:
    """Held-out accuracies of the heads and the orientation error (degrees, bars and ellipses)."""
    trainee.eval()
    outs = [trainee(model_input(_take(batch, i, i + chunk), mean, std)) for i in range(0, len(batch), chunk)]
    out = {key: torch.cat([o[key] for o in outs]) for key in outs[0]}
    shape = torch.from_numpy(batch.shape)
    present = shape != shapes_images.NUM_CLASSES - 1
    cell = torch.from_numpy(batch.cell)
    size = torch.from_numpy(batch.size)
    has_angle = torch.from_numpy(batch.target_mask[:, 3])
    predicted = torch.atan2(out["target"][:, 4], out["target"][:, 3]) / 2
    true = torch.atan2(torch.from_numpy(batch.target[:, 4]), torch.from_numpy(batch.target[:, 3])) / 2
    error = torch.remainder(predicted - true + math.pi / 2, math.pi) - math.pi / 2
    position = (out["target"][:, :2] - torch.from_numpy(batch.target[:, :2])).abs() * 16  # pixels at 32²
    return {
        "shape_acc": float((out["shape"].argmax(1) == shape).float().mean()),
        "cell_acc": float((out["cell"].argmax(1) == cell)[present].float().mean()),
        "size_acc": float((out["size"].argmax(1) == size)[present].float().mean()),
        "angle_err_deg": float(error[has_angle].abs().mean() * 180 / math.pi),
        "position_err_px": float(position[present].mean()),
    }


def _take(batch: shapes_images.ImageBatch, start: int, stop: int) -> shapes_images.ImageBatch:
    return shapes_images.ImageBatch(**{k: v[start:stop] for k, v in asdict(batch).items()})


def _print(text: str) -> None:
    print(text, flush=True)


def train_model(
    name: str, recipe: Recipe | None = None, *, eval_count: int = EVAL_COUNT, log=_print
) -> tuple[nn.Module, dict]:
    """Train ``name`` with ``recipe`` (default: its :data:`RECIPES` entry); returns the backbone (eval
    mode, heads dropped) and the training record."""
    recipe = recipe or RECIPES[name]
    torch.manual_seed(recipe.seed)
    backbone = ARCHITECTURES[name]()
    mean, std = normalisation(backbone)
    trainee = Trainee(backbone)
    decay = [p for n, p in trainee.named_parameters() if p.ndim >= 2 and "token" not in n]
    no_decay = [p for n, p in trainee.named_parameters() if not (p.ndim >= 2 and "token" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr,
    )
    held_out = shapes_images.make_images(eval_count, EVAL_SEED)
    start, cpu_start = time.perf_counter(), time.process_time()
    trainee.train()
    running: dict[str, float] = {}
    for step in range(recipe.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, recipe)
        batch = shapes_images.make_images(recipe.batch_size, recipe.seed * 100_000 + step)
        parts = losses(trainee(model_input(batch, mean, std)), batch)
        loss = sum(LOSS_WEIGHTS[k] * v for k, v in parts.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(trainee.parameters(), 1.0)
        optimizer.step()
        for key, value in parts.items():
            running[key] = 0.9 * running.get(key, value.item()) + 0.1 * value.item()
        if log and (step + 1) % max(1, recipe.steps // 8) == 0:
            text = " ".join(f"{k}={v:.3f}" for k, v in running.items())
            log(f"  {name} step {step + 1}/{recipe.steps} ({time.perf_counter() - start:.0f}s) {text}")
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    metrics = evaluate(trainee, held_out, mean, std)
    backbone.eval()
    record = {
        "model": name,
        "architecture": type(backbone).__name__,
        "params": sum(p.numel() for p in backbone.parameters()),
        "recipe": asdict(recipe),
        "train_images": recipe.steps * recipe.batch_size,
        "train_seconds": round(seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "threads": torch.get_num_threads(),
        "held_out": {"images": eval_count, "seed": EVAL_SEED, **{k: round(v, 4) for k, v in metrics.items()}},
        "chance_shape_acc": round(1 / shapes_images.NUM_CLASSES, 4),
        "classes": list(shapes_images.CLASSES),
        "mean": list(mean),
        "std": list(std),
        "versions": {"torch": torch.__version__, "timm": _timm_version(), "python": platform.python_version()},
    }
    gammas = layer_scale_summary(backbone)
    if gammas:
        record["layer_scale_mean_abs"] = gammas
    return backbone, record


def layer_scale_summary(model: nn.Module) -> dict[str, float]:
    """Mean |gamma| of every LayerScale of a ViT (``gamma_1``, ``gamma_2``) or a ConvNeXt (one ``gamma``
    per block); empty for models without one."""
    return {
        n: round(p.detach().abs().mean().item(), 4)
        for n, p in model.named_parameters()
        if n.endswith(("gamma_1", "gamma_2")) or (n.endswith(".gamma") and ".blocks." in n)
    }


def _timm_version() -> str:
    import timm

    return timm.__version__


def save_weights(backbone: nn.Module, path: Path) -> str:
    """Write the backbone's state dict (fp32, contiguous) as safetensors; returns the file's sha256."""
    from safetensors.torch import save_file

    tensors = {
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
        for k, v in backbone.state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # One metadata key only: safetensors writes a metadata map in no fixed order, which would make the
    # file's sha256 differ between runs that saved the very same tensors.
    save_file(tensors, str(path), metadata={"format": "pt"})
    path.chmod(0o644)
    return file_sha256(path)


def update_expected_sha(name: str, sha: str, load_py: Path | None = None) -> bool:
    """Set ``EXPECTED_SHA256[name]`` in liftbench/backbones/shapes/load.py to ``sha``, adding the entry (as the dict's
    last line) for a model that has none yet; False if the dict itself is not found."""
    load_py = load_py or Path(__file__).resolve().parent / "load.py"
    text = load_py.read_text()
    pattern = re.compile(rf'("{re.escape(name)}":\s*")[0-9a-f]*(")')
    new, count = pattern.subn(rf"\g<1>{sha}\g<2>", text, count=1)
    if not count:
        table = re.compile(r"(EXPECTED_SHA256 = \{\n(?:    .*\n)*?)(\}\n)")
        new, count = table.subn(lambda m: f'{m.group(1)}    "{name}": "{sha}",\n{m.group(2)}', text, count=1)
    if count and new != text:
        load_py.write_text(new)
    return bool(count)


def render_readme(records: dict[str, dict]) -> str:
    lines = [
        "# Shapes backbones: weights and how they were trained",
        "",
        "Written by `python -m liftbench.backbones.shapes.train` (regenerates these files; deterministic seeds). "
        "Task: 32×32 generated grayscale images (`liftbench.backbones.shapes.images`), "
        f"{shapes_images.NUM_CLASSES} shape classes ({', '.join(shapes_images.CLASSES)}) "
        "plus auxiliary position-cell, size-tercile and centre/size/orientation heads (dropped after training). "
        "Inputs are fed as liftbench feeds slices: grayscale repeated to 3 channels, normalised with the model's mean/std.",
        "",
        "| model | params | steps × batch | lr | train wall (CPU) time | threads | held-out shape acc (chance) | cell acc | size acc | angle err | file sha256 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(records.items()):
        h = r["held_out"]
        lines.append(
            f"| {name} | {r['params']:,} | {r['recipe']['steps']} × {r['recipe']['batch_size']} | {r['recipe']['lr']:g} | "
            f"{r['train_seconds']:.0f} s ({r.get('train_cpu_seconds', float('nan')):.0f} s) | {r['threads']} | {h['shape_acc']:.3f} ({r['chance_shape_acc']:.3f}) | "
            f"{h['cell_acc']:.3f} | {h['size_acc']:.3f} | {h['angle_err_deg']:.1f}° | `{r['file_sha256'][:16]}…` |"
        )
    lines += [
        "",
        f"Held-out: {EVAL_COUNT} images from seed {EVAL_SEED}, never drawn in training. Full records: `training.json`. "
        "Times are those of the recorded run and depend on what else the machine was running; the weights do not "
        "(same seeds and thread count, same tensors).",
        "",
    ]
    for name, r in sorted(records.items()):
        if "layer_scale_mean_abs" in r:
            values = ", ".join(f"{v:.3f}" for v in r["layer_scale_mean_abs"].values())
            order = "block 0 attn, mlp, block 1 ..." if r["architecture"] == "Eva" else "block by block, stage 0 first"
            lines += [f"{name} LayerScale mean |gamma| ({order}; init 0.1): {values}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m liftbench.backbones.shapes.train",
        description="Train the shapes backbones on CPU and write their weights.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--model", default="all", choices=["all", *ARCHITECTURES], help="which model to train")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's step count (for quick checks)")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch CPU threads (default 2; the records were made with 2)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = list(ARCHITECTURES) if args.model == "all" else [args.model]
    out = args.out.resolve()
    record_file = out / "training.json"
    records = json.loads(record_file.read_text()) if record_file.is_file() else {}
    for name in names:
        recipe = RECIPES[name]
        if args.steps is not None:
            recipe = Recipe(
                **{**asdict(recipe), "steps": args.steps, "warmup": min(recipe.warmup, max(1, args.steps // 10))}
            )
        print(f"training {name}: {recipe}", flush=True)
        backbone, record = train_model(name, recipe)
        path = out / f"{name}.safetensors"
        record["file"] = path.name
        record["file_sha256"] = save_weights(backbone, path)
        record["state_dict_sha256"] = state_dict_sha256(backbone)
        records[name] = record
        h = record["held_out"]
        print(
            f"{name}: held-out shape acc {h['shape_acc']:.3f} (chance {record['chance_shape_acc']:.3f}), cell {h['cell_acc']:.3f}, "
            f"size {h['size_acc']:.3f}, angle err {h['angle_err_deg']:.1f} deg; {record['train_seconds']:.0f} s; wrote {path}"
        )
        if out == DEFAULT_OUT.resolve():
            if update_expected_sha(name, record["file_sha256"]):
                print(f"  updated EXPECTED_SHA256[{name!r}] in liftbench/backbones/shapes/load.py")
            else:
                print(f"  set EXPECTED_SHA256[{name!r}] = {record['file_sha256']!r} in liftbench/backbones/shapes/load.py")
        else:
            print(f"  file sha256 {record['file_sha256']} (load it with --weights {path})")
    out.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    (out / "README.md").write_text(render_readme(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
