"""Writing a study back as TOML (the standard library reads TOML but does not write it).

Only what a study holds is supported: strings, whole numbers, floats, booleans, lists of those, tables and
the ``[[grid]]`` array of tables. The output is canonical — keys in the study's own order, one way to write
each value — so a study written twice gives the same bytes, and ``tomllib`` reads back exactly what was
written (the tests check the round trip).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from liftbench.study.model import Study

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
HEADER = (
    "# The study liftbench ran into this folder (names resolved, command-line flags applied).\n"
    "# `liftbench run --study <this file>` runs it again; what is already done is skipped.\n"
)


def is_record(path: Path) -> bool:
    """Whether a study file is one liftbench recorded into a results folder (it opens with the record's header)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline() == HEADER.splitlines(keepends=True)[0]
    except OSError:
        return False


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) to a study file")


def _table(lines: list[str], header: str, table: Mapping[str, Any]) -> None:
    """``[header]`` with its plain values, then its sub-tables (each with its own header)."""
    plain = {k: v for k, v in table.items() if not isinstance(v, Mapping) and v is not None}
    nested = {k: v for k, v in table.items() if isinstance(v, Mapping) and v}
    if plain or not nested:
        lines.append("")
        lines.append(header)
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in plain.items())
    for key, sub in nested.items():
        _table(lines, f"[{header.strip('[]')}.{_key(key)}]", sub)


def study_dict(study: Study) -> dict[str, Any]:
    """The study as the TOML document :func:`liftbench.study.model.parse_study` reads (defaults left out)."""
    doc: dict[str, Any] = {"name": study.name}
    if study.description:
        doc["description"] = study.description
    doc["results"] = study.results
    doc["executor"] = study.executor
    if study.device:
        doc["device"] = study.device
    if study.executor_options:
        doc["executor_options"] = dict(study.executor_options)
    layout = study.leaderboard
    doc["leaderboard"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(layout).items() if v is not None}
    doc["grid"] = []
    for grid in study.grids:
        item: dict[str, Any] = {}
        for key, value in vars(grid).items():
            if value is None or (isinstance(value, Mapping) and not value):
                continue
            item[key] = list(value) if isinstance(value, tuple) else value
        doc["grid"].append(item)
    return doc


def dumps(study: Study, header: str = HEADER) -> str:
    """The study as TOML text."""
    doc = study_dict(study)
    lines = [header.rstrip("\n")] if header else []
    top = {k: v for k, v in doc.items() if k not in ("grid",) and not isinstance(v, Mapping)}
    lines.extend(f"{_key(k)} = {_value(v)}" for k, v in top.items())
    for key in ("executor_options", "leaderboard"):
        if key in doc:
            _table(lines, f"[{key}]", doc[key])
    for grid in doc["grid"]:
        plain = {k: v for k, v in grid.items() if not isinstance(v, Mapping)}
        lines.append("")
        lines.append("[[grid]]")
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in plain.items())
        for key, sub in grid.items():
            if isinstance(sub, Mapping):
                _table(lines, f"[grid.{key}]", sub)
    return "\n".join(lines).lstrip("\n") + "\n"
