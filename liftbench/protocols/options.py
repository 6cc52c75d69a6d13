"""Protocol options: the paper's values as defaults, a ``--quick`` preset, typed user overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from liftbench.errors import UsageError


def resolve(defaults: Mapping[str, Any], quick: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, then the quick preset if ``given["quick"]``, then the user's values (cast to type)."""
    options = dict(defaults)
    if given.get("quick"):
        options.update(quick)
    for key, value in given.items():
        if key == "quick":
            continue
        if key not in defaults:
            raise UsageError(f"option {key!r} does not apply to this protocol; valid: {', '.join(defaults)}")
        kind = type(defaults[key])
        try:
            options[key] = kind(value) if not isinstance(defaults[key], bool) else str(value).lower() in ("1", "true", "yes")
        except (TypeError, ValueError):
            raise UsageError(f"option {key}={value!r} is not a valid {kind.__name__}") from None
    return options
