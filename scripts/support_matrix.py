"""Which timm architecture families each lifting strategy lifts: build, lift, run, classify; write a table.

One small variant per family, at timm's random initialisation (nothing is downloaded), is lifted with every
registered strategy and run on one tiny volume. Each (model, strategy) pair ends in one of:

* ``lifts``   — the lifting returned and a forward on the volume gave finite features, and after ``unlift()``
  the 2D model gives the same output on an image as before;
* ``refuses`` — ``CannotLiftError`` while lifting, and the model is exactly as it was (state dict, module
  tree, no patched layer, the same 2D output): liftbench knows it cannot do this and says so;
* ``fails``   — anything else: another exception, a refusal that left the model changed, an error in the
  forward, non-finite features or a changed 2D model.

"lifts" says the lifting runs, not that it is a faithful 3D version of the architecture: docs/strategies.md
says which liftings are exact for which layers.

    python scripts/support_matrix.py                        # writes docs/support-matrix.md
    python scripts/support_matrix.py --out - --models resnet18,regnetx_002
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = ("2d", "3d", "acs", "pcm", "pcg")
# family -> (timm model, timm kwargs): the smallest variant of each, at 32^3 (ViTs: a 32x32 image grid)
FAMILIES: dict[str, tuple[str, dict]] = {
    "ResNet": ("resnet18", {}),
    "ResNet-D": ("resnet26d", {}),
    "ConvNeXt": ("convnext_atto", {}),
    "ConvNeXt-V2": ("convnextv2_atto", {}),
    "EfficientNet": ("efficientnet_b0", {}),
    "MobileNetV2": ("mobilenetv2_050", {}),
    "MobileNetV3": ("mobilenetv3_small_050", {}),
    "RegNet": ("regnetx_002", {}),
    "DenseNet": ("densenet121", {}),
    "ViT": ("vit_tiny_patch16_224", {"img_size": 32}),
    "DeiT": ("deit_tiny_patch16_224", {"img_size": 32}),
    "DINOv3 ViT": ("vit_small_patch16_dinov3", {"depth": 2, "global_pool": "token"}),
    "Swin": ("swin_tiny_patch4_window7_224", {"img_size": 32, "window_size": 2}),
}
VOLUME = (1, 1, 32, 32, 32)


@dataclass(frozen=True)
class Outcome:
    status: str  # lifts | refuses | fails
    detail: str = ""


def _snapshot(model: nn.Module, image: torch.Tensor) -> dict:
    with torch.no_grad():
        out = model(image)
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "tree": [(n, id(m), type(m)) for n, m in model.named_modules()],
            "patched": [n for n, m in model.named_modules() if "forward" in m.__dict__], "out": out}  # fmt: skip


def _same(model: nn.Module, image: torch.Tensor, before: dict) -> bool:
    now = _snapshot(model, image)
    state_ok = list(now["state"]) == list(before["state"]) and all(
        now["state"][k].shape == v.shape and torch.equal(now["state"][k], v) for k, v in before["state"].items()
    )
    return state_ok and now["tree"] == before["tree"] and not now["patched"] and torch.equal(now["out"], before["out"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160] if text else ''}"


def check(model: nn.Module, strategy: str, volume: torch.Tensor) -> Outcome:
    """Lift ``model`` with ``strategy``, run it on ``volume``, and classify what happened (module docstring)."""
    import liftbench
    from liftbench.errors import CannotLiftError

    image = torch.randn(1, 3, volume.shape[-2], volume.shape[-1], generator=torch.Generator().manual_seed(0))
    before = _snapshot(model, image)
    try:
        lifted = liftbench.lift(model, strategy)
    except CannotLiftError as exc:
        if _same(model, image, before):
            return Outcome("refuses", _first_line(exc))
        return Outcome("fails", "refused but left the model changed: " + _first_line(exc))
    except Exception as exc:  # noqa: BLE001 - classifying every failure is the point
        return Outcome("fails", "while lifting: " + _first_line(exc))
    try:
        with torch.no_grad():
            features = lifted(volume)
        finite = bool(torch.isfinite(features.pooled).all())
        shape = tuple(features.pooled.shape)
    except Exception as exc:  # noqa: BLE001
        lifted.unlift()
        return Outcome("fails", "forward: " + _first_line(exc))
    lifted.unlift()
    if not finite:
        return Outcome("fails", "non-finite features")
    if not _same(model, image, before):
        return Outcome("fails", "the 2D model changed after unlift()")
    return Outcome("lifts", f"pooled {shape}")


def build(name: str, kwargs: dict) -> nn.Module:
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return timm.create_model(name, pretrained=False, **kwargs).eval()


def matrix(families: dict[str, tuple[str, dict]]) -> tuple[dict[str, dict[str, Outcome]], dict[str, str]]:
    """family -> strategy -> :class:`Outcome` (a model timm cannot build fails every strategy), and the
    liftbench family (vit/cnn) each model was recognised as."""
    from liftbench.api import backbone_family

    volume = torch.randn(*VOLUME, generator=torch.Generator().manual_seed(1))
    results: dict[str, dict[str, Outcome]] = {}
    kinds: dict[str, str] = {}
    for family, (name, kwargs) in families.items():
        try:
            model = build(name, kwargs)
        except Exception as exc:  # noqa: BLE001
            results[family] = {s: Outcome("fails", "timm could not build it: " + _first_line(exc)) for s in STRATEGIES}
            continue
        kinds[family] = backbone_family(model)
        results[family] = {strategy: check(model, strategy, volume) for strategy in STRATEGIES}
    return results, kinds


def render(results: dict[str, dict[str, Outcome]], families: dict[str, tuple[str, dict]], kinds: dict[str, str]) -> str:
    """The Markdown page; ``kinds``: the family liftbench recognised each model as (vit or cnn)."""
    from tabulate import tabulate

    rows = [[family, f"`{families[family][0]}`", kinds.get(family, "?"), *(results[family][s].status for s in STRATEGIES)]
            for family in results]  # fmt: skip
    counts = {s: Counter(results[f][s].status for f in results) for s in STRATEGIES}
    summary = [[s, counts[s]["lifts"], counts[s]["refuses"], counts[s]["fails"]] for s in STRATEGIES]
    details = [f"- **{family}** `{s}`: {o.status}: {o.detail}" for family in results for s, o in results[family].items()
               if o.status != "lifts"]  # fmt: skip
    return "\n".join(
        [
            "# Support matrix: which timm architecture families each strategy lifts",
            "",
            "Generated by `python scripts/support_matrix.py` (timm random init, one "
            f"{'x'.join(map(str, VOLUME[2:]))} volume). **lifts**: the lifting ran and gave finite features, and the 2D "
            "model is unchanged after `unlift()`; **refuses**: `CannotLiftError` at lift time with the model left "
            "exactly as it was; **fails**: anything else. *lifts* means it runs, not that the lifting is a faithful 3D "
            "version of every layer: see [strategies.md](strategies.md) for what is exact.",
            "",
            tabulate(rows, headers=["family", "timm model", "lifted as", *STRATEGIES], tablefmt="github"),
            "",
            "## Counts per strategy",
            "",
            tabulate(summary, headers=["strategy", "lifts", "refuses", "fails"], tablefmt="github"),
            "",
            "## Why not",
            "",
            *details,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(ROOT / "docs" / "support-matrix.md"), help="file to write, or - for stdout"
    )
    parser.add_argument("--models", default="", help="comma list of family names to run (default: all)")
    args = parser.parse_args(argv)
    chosen = [m for m in args.models.split(",") if m] or list(FAMILIES)
    unknown = [m for m in chosen if m not in FAMILIES]
    if unknown:
        print(f"unknown family {unknown[0]!r}; valid: {', '.join(FAMILIES)}", file=sys.stderr)
        return 2
    families = {f: FAMILIES[f] for f in chosen}
    try:
        results, kinds = matrix(families)
        text = render(results, families, kinds)
    except Exception:  # pragma: no cover - a bug in this script, not a lifting outcome
        traceback.print_exc()
        return 1
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
