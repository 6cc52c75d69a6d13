"""Planes and plane schedules, parsed once so every strategy agrees on their meaning.

A volume is ``(B, C, D, H, W)``. A plane names the two axes a 2D operator sees; the third axis is the
one the slices run along (see docs/strategies.md, "Planes"):

=====  ===========  ====================
plane  slices along  each slice's grid
=====  ===========  ====================
HW     D (axial)     (H, W)
DW     H (coronal)   (D, W)
DH     W (sagittal)  (D, H)
=====  ===========  ====================
"""

from __future__ import annotations

from collections.abc import Sequence

from liftbench.errors import UsageError

PLANES = ("HW", "DW", "DH")
DEFAULT_SCHEDULE = ("HW", "DW", "DH", "HW")

# For each plane: the index (0=D, 1=H, 2=W) of the axis its slices run along.
SLICE_AXIS = {"HW": 0, "DW": 1, "DH": 2}


def parse_schedule(schedule: str | Sequence[str] | None) -> tuple[str, ...]:
    """Turn ``"HW,DW,DH,HW"`` (or a sequence of plane names) into a validated tuple of planes.

    Lower case, spaces and ``-``/``|`` separators are accepted because people type them; anything
    else is a :class:`UsageError` naming the bad plane and the valid ones.
    """
    if schedule is None:
        return DEFAULT_SCHEDULE
    if isinstance(schedule, str):
        parts = [p for p in schedule.replace("|", ",").replace("-", ",").replace(" ", ",").split(",") if p]
    else:
        parts = list(schedule)
    planes = tuple(str(p).strip().upper() for p in parts)
    if not planes:
        raise UsageError(f"invalid schedule {schedule!r}: it names no plane; valid planes: {', '.join(PLANES)}")
    for plane in planes:
        if plane not in PLANES:
            raise UsageError(
                f"invalid schedule {schedule!r}: unknown plane {plane!r}; valid planes: {', '.join(PLANES)} "
                "(e.g. 'HW,DW,DH,HW')"
            )
    return planes


def plane_for_block(schedule: Sequence[str], index: int) -> str:
    """The plane block ``index`` runs on: the schedule repeats through the depth of the network."""
    return schedule[index % len(schedule)]


def schedule_text(schedule: Sequence[str]) -> str:
    """The canonical text form stored in result rows and cache keys."""
    return ",".join(schedule)
