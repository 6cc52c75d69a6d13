"""What ``liftbench run`` accepts, kept light so the parser builds without importing torch: the demo's
settings and the parsing of seeds and KEY=VALUE lists."""

from __future__ import annotations

from liftbench.errors import UsageError

# The demo: liftbench's own small backbones, pretrained in 2D on generated shapes and shipped with the
# package, lifted by every strategy to the synthetic 32^3 set; cached linear probe, 3 seeds. Its results
# go to a folder of its own (never the committed results/demo, so nothing committed is reused); pass
# --results to write elsewhere (`liftbench run --results results/demo` regenerates the committed study).
DEMO = {
    "datasets": "synthetic",
    "backbones": "vit-tiny-shapes,resnet-tiny-shapes",
    "strategies": "all",
    "protocol": "linear",
    "weights": "pretrained",
    "size": 32,
    "seeds": "3",
    "results": "liftbench-demo",
    "options": {"iterations": 1000, "warmup": 50},
}
DEMO_TITLE = (
    "liftbench demo: synthetic set (32^3, 3 classes), liftbench's built-in ViT and ResNet pretrained in 2D on "
    "generated shapes, every strategy, cached linear probe, 3 seeds."
)


def key_values(items: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} takes KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def parse_seeds(text: str) -> list[int]:
    """``5`` means seeds 0..4; ``0,3,7`` lists them."""
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        count = int(text)
    except ValueError:
        raise UsageError(f"invalid --seeds {text!r}: give a count (5) or a list (0,3,7)") from None
    if count < 1:
        raise UsageError(f"invalid --seeds {text!r}: at least one seed")
    return list(range(count))
