"""Typed options a plugin declares at registration: protocols, datasets and executors.

One declaration serves every way of setting an option: the command line (a flag generated from it,
shown under its plugin in ``liftbench run --help``), ``--opt``/``--dataset-opt KEY=VALUE``, the Python
API and study files. Values are cast to the declared type once, before anything runs, so a bad value
is a usage error naming the option, the value and what would be valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from liftbench.errors import UsageError

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
    """

    type: type = str
    default: Any = None
    help: str = ""
    choices: tuple = ()
    multiple: bool = False
    flag: bool = True

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
        return cast


def resolve(declared: Mapping[str, Option], given: Mapping[str, Any], *, owner: str, quick: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Declared defaults, then the ``quick`` preset when ``given["quick"]`` is true, then the user's
    values cast to their types. An undeclared name is a usage error naming the valid ones."""
    options = {name: opt.default for name, opt in declared.items()}
    if given.get("quick") and quick:
        options.update(quick)
    for name, value in given.items():
        if name == "quick":
            continue
        if name not in declared:
            valid = ", ".join(sorted(declared)) or "(none)"
            from liftbench.registry import did_you_mean  # here: the registry imports this module

            raise UsageError(f"option {name!r} does not apply to {owner}{did_you_mean(name, declared)} valid: {valid}")
        options[name] = declared[name].cast(name, value, owner)
    return options
