"""Typed options a plugin declares at registration: protocols, datasets and executors.

One declaration serves every way of setting an option: the command line (a flag generated from it,
shown under its plugin in ``liftbench run --help``), ``--opt``/``--dataset-opt KEY=VALUE``, the Python
API and study files. Values are cast to the declared type once, before anything runs, so a bad value
is a usage error naming the option, the value and what would be valid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from liftbench.errors import UsageError
from liftbench.names import did_you_mean

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Option:
    """One declared option.

    :param type: ``int``, ``float``, ``str`` or ``bool``; values given as text are cast to it.
    :param default: the value when the user gives none (``None``: unset, the implementation decides).
    :param help: one line for ``--help``.
    :param choices: the valid values, if they are a closed set.
    :param multiple: the option may be given several times; its value is then a list.
    :param flag: whether the command line gets a flag for it (else only ``--opt KEY=VALUE``).
    :param min: the smallest valid value (inclusive; exclusive with ``min_open``), for ``int``/``float``.
    :param max: the largest valid value (inclusive), for ``int``/``float``.
    :param min_open: ``min`` itself is not valid (a learning rate is ``> 0``, not ``>= 0``).
    :param below: the name of another option of the same owner this one must stay below (warm-up < iterations).
    :param check: ``check(value) -> reason or None``, for a rule the bounds cannot say (the value must be a
        ``D-HH:MM:SS`` time, say); a reason is reported as ``option name=value of owner: reason``.

    A ``float`` option is always finite: ``nan`` and ``inf`` are never a setting. ``None`` (unset: the
    implementation decides) is always valid. Bounds are checked wherever a value enters — the command line,
    ``--opt``, a study file, the Python API — and on the declared default itself, at registration.
    """

    type: type = str
    default: Any = None
    help: str = ""
    choices: tuple = ()
    multiple: bool = False
    flag: bool = True
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    below: str | None = None
    check: Callable[[Any], str | None] | None = None

    def bounds(self) -> str:
        """The valid range in words (``>= 1``, ``> 0``, ``in [0, 1]``, ``< iterations``), '' when unbounded."""
        low = None if self.min is None else f"{'>' if self.min_open else '>='} {self.min:g}"
        high = None if self.max is None else f"<= {self.max:g}"
        parts = [p for p in (low, high) if p]
        if self.below:
            parts.append(f"< {self.below}")
        if self.type is float:
            parts.append("finite")
        return ", ".join(parts)

    def cast(self, name: str, value: Any, owner: str = "") -> Any:
        """``value`` as this option's type; a list for ``multiple`` options."""
        if self.multiple:
            values = value if isinstance(value, (list, tuple)) else [value]
            return [self._cast_one(name, v, owner) for v in values]
        return self._cast_one(name, value, owner)

    def _cast_one(self, name: str, value: Any, owner: str) -> Any:
        where = f" of {owner}" if owner else ""
        if value is None:
            return None
        try:
            if self.type is bool:
                if isinstance(value, bool):
                    cast = value
                elif str(value).strip().lower() in TRUE + FALSE:
                    cast = str(value).strip().lower() in TRUE
                else:
                    raise ValueError
            elif self.type is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            else:
                cast = self.type(value)
        except (TypeError, ValueError):
            kind = "true/false" if self.type is bool else f"a valid {self.type.__name__}"
            raise UsageError(f"option {name}={value!r}{where} is not {kind}") from None
        if self.choices and cast not in self.choices:
            raise UsageError(f"option {name}={value!r}{where} is not one of: {', '.join(map(str, self.choices))}")
        reason = self._out_of_bounds(cast)
        if reason:
            raise UsageError(f"option {name}={value!r}{where} is out of range: must be {reason}")
        if self.check is not None:
            reason = self.check(cast)
            if reason:
                raise UsageError(f"option {name}={value!r}{where}: {reason}")
        return cast

    def _out_of_bounds(self, value: Any) -> str:
        """The bounds in words if ``value`` breaks them, else ''."""
        if self.type not in (int, float) or isinstance(value, bool):
            return ""
        bad = (self.type is float and not math.isfinite(value)) or (
            self.min is not None and (value <= self.min if self.min_open else value < self.min)
        ) or (self.max is not None and value > self.max)
        return self.bounds() if bad else ""


def check_declared(given: Iterable[str], declared: Iterable[str], owner: str, *, what: str = "option") -> None:
    """The one undeclared-option rule: a name no owner declares is a usage error with did-you-mean and the valid
    names (``owner``: ``protocol 'linear'``, ``protocol(s) linear, featdice``, ``dataset(s) lidc``...)."""
    declared = set(declared)
    unknown = [name for name in given if name not in declared and name != "quick"]
    if unknown:
        valid = ", ".join(sorted(declared)) or "(none)"
        raise UsageError(f"{what} {unknown[0]!r} does not apply to {owner}{did_you_mean(unknown[0], declared)} valid: {valid}")


def resolve(declared: Mapping[str, Option], given: Mapping[str, Any], *, owner: str, quick: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Declared defaults, then the ``quick`` preset when ``given["quick"]`` is true, then the user's
    values cast to their types. An undeclared name is a usage error naming the valid ones."""
    options = {name: opt.default for name, opt in declared.items()}
    if given.get("quick") and quick:
        options.update(quick)
    check_declared(given, declared, owner)
    for name, value in given.items():
        if name != "quick":
            options[name] = declared[name].cast(name, value, owner)
    check_relations(declared, options, owner)
    return options


def check_relations(declared: Mapping[str, Option], options: Mapping[str, Any], owner: str) -> None:
    """The ``below`` rules between a set of resolved options (warm-up must stay below iterations)."""
    for name, opt in declared.items():
        other = opt.below
        if other is None or options.get(name) is None or options.get(other) is None:
            continue
        if not options[name] < options[other]:
            where = f" of {owner}" if owner else ""
            raise UsageError(f"option {name}={options[name]!r}{where} is out of range: must be < {other} ({options[other]!r})")
