"""What ``liftbench run`` accepts, kept light so the parser builds without importing torch: KEY=VALUE lists,
and seeds, sizes and schedules through the study files' own parsers (one rule for flags and files alike). (The demo is a study: ``liftbench/studies/demo.toml``.)"""

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
    """``--size 64`` is one size; ``--size 32,64`` runs each (a tuple, as a study's ``size = [32, 64]``;
    :func:`liftbench.study.model.sizes_of`, the one parser)."""
    from liftbench.study.model import sizes_of

    return sizes_of(text, "--size")


def parse_schedules(text: str) -> str | tuple[str, ...]:
    """``--schedule HW,DW,DH,HW`` is one schedule; several are ``;``-separated (``"HW,DW,DH,HW;HW,DH,DW,HW"``;
    :func:`liftbench.study.model.schedules_of`, the one parser)."""
    from liftbench.study.model import schedules_of

    return schedules_of(text, "--schedule")
