"""What ``liftbench run`` accepts, kept light so the parser builds without importing torch: the demo's
settings, the protocol options that have their own flags, and the parsing of seeds and KEY=VALUE lists."""

from __future__ import annotations

from liftbench.errors import UsageError

DEMO = {
    "datasets": "synthetic",
    "backbones": "vits",
    "strategies": "all",
    "protocol": "linear",
    "weights": "random",
    "size": 32,
    "seeds": "1",
    "results": "results/demo",
    "options": {"iterations": 1000, "warmup": 50},
}
PROTOCOL_FLAGS = ("iterations", "warmup", "batch_size", "lr", "weight_decay", "threshold", "dtype")


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
