"""What ``liftbench run`` accepts, kept light so the parser builds without importing torch: the parsing of
seeds, sizes, schedules and KEY=VALUE lists. (The demo is a study: ``liftbench/studies/demo.toml``.)"""

from __future__ import annotations

from liftbench.errors import UsageError


def key_values(items: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} takes KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: ``5`` means seeds 0..4; ``0,3,7`` lists them (:func:`liftbench.study.model.seeds_of`, the one parser)."""
    from liftbench.study.model import seeds_of

    return list(seeds_of(text, "--seeds"))


def parse_sizes(text: str) -> int | tuple[int, ...]:
    """``--size 64`` is one size; ``--size 32,64`` runs each (a tuple, as a study's ``size = [32, 64]``)."""
    from liftbench.commands.bench import parse_ints

    sizes = parse_ints(text, "--size")
    return sizes[0] if len(sizes) == 1 else sizes


def parse_schedules(text: str) -> str | tuple[str, ...]:
    """``--schedule HW,DW,DH,HW`` is one schedule (its planes comma-separated, so several are ``;``-separated:
    ``"HW,DW,DH,HW;HW,DH,DW,HW"`` runs each); the planes are checked when the grid is planned."""
    schedules = list(dict.fromkeys(part.strip() for part in text.split(";") if part.strip()))
    if not schedules:
        raise UsageError(f"invalid --schedule {text!r}: give a schedule such as HW,DW,DH,HW, or several separated by ';'")
    return schedules[0] if len(schedules) == 1 else tuple(schedules)
