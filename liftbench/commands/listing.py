"""``liftbench list [kind [name]]``: every registered thing, where it comes from, what it does — in tables that
fit a 100-column terminal (long text wraps); ``liftbench list protocols linear-aug`` shows one entry in full,
with each option's type, default, range and help."""

from __future__ import annotations

import textwrap

from tabulate import tabulate

from liftbench.errors import ExitCode, UsageError
from liftbench.names import did_you_mean
from liftbench.plugin.manager import build_registry
from liftbench.plugin.registry import KINDS, PLURAL
from liftbench.study.model import registered_study

WIDTH = 100
GAP = 2  # tabulate's "simple" format puts two spaces between columns
EXTRA = {"strategy": "lifts", "backbone": "family", "protocol": "options", "executor": "options", "dataset": "options",
         "study": "runs"}  # fmt: skip


def _study_columns(entry, registry) -> tuple[str, str]:
    """(description with the leaderboard layout, planned runs) of a study; a study naming something not
    registered shows ``?`` and why (it errors only when run)."""
    from liftbench.study.plan import count_runs

    try:
        study = registered_study(entry)
    except UsageError as exc:
        return f"{entry.description} (unreadable: {exc})", "?"
    runs, why = count_runs(study, registry)
    layout = study.leaderboard.describe()
    text = f"{entry.description}; leaderboard: {layout}" if layout else entry.description
    return text, str(runs) if runs is not None else f"? ({why.split(': ', 1)[-1]})"


def _extra(kind: str, entry) -> str:
    if kind == "strategy":
        notes = entry.notes
        return ", ".join(f"{f} ({notes[f]})" if f in notes else f for f in entry.families)
    if kind == "backbone":
        return entry.family
    if kind in ("protocol", "executor"):
        return f"{len(entry.options)}" if entry.options else ""
    if kind == "dataset":
        return ", ".join(entry.parameters or ())
    return ""


def _fit(rows: list[list[str]], headers: list[str], wrap: dict[int, int]) -> str:
    """``rows`` as a table no wider than :data:`WIDTH`: the columns in ``wrap`` (index -> share of what is
    left) wrap; the others keep their widest cell."""
    fixed = sum(max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers)) if i not in wrap)
    room = WIDTH - fixed - GAP * (len(headers) - 1) - 2 * len(wrap)  # tabulate may pad a wrapped column
    widths = [None] * len(headers)
    for index, share in wrap.items():
        widths[index] = max(8, room * share // sum(wrap.values()))
    return tabulate(rows, headers=headers, tablefmt="simple", maxcolwidths=widths)


def _aliases(aliases, room: int = 14) -> str:
    """The shortest aliases that fit ``room`` characters, one a line, and ``+N`` for the rest (the detail view
    lists them all): a wrapped timm name helps nobody."""
    shown, rest = [], sorted(aliases, key=len)
    while rest and len(rest[0]) <= room:
        shown.append(rest.pop(0))
    return "\n".join(shown + ([f"+{len(rest)} more"] if rest else []))


def _table(kind: str, registry) -> str:
    rows = []
    for entry in registry.entries(kind):
        description, extra = (_study_columns(entry, registry) if kind == "study" else (entry.description, _extra(kind, entry)))
        rows.append([entry.name, _aliases(entry.aliases), description, extra, entry.plugin])
    if not rows:
        return "  (none)"
    return _fit(rows, ["name", "aliases", "description", EXTRA[kind], "plugin"], {2: 7, 3: 2})


def _wrapped(label: str, text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=f"{label}: ", subsequent_indent="  ") or [f"{label}:"]


def _detail(kind: str, name: str, registry) -> str:
    """One entry in full: what it is, where it comes from, and its options."""
    entry = registry.get(kind, name)
    description = _study_columns(entry, registry)[0] if kind == "study" else entry.description
    lines = [f"{kind} {entry.name}", *_wrapped("description", description)]
    if entry.aliases:
        lines += _wrapped("aliases", ", ".join(entry.aliases))
    lines += _wrapped("plugin", entry.provider)
    extra = _extra(kind, entry) if kind not in ("protocol", "executor", "dataset", "study") else ""
    if kind == "study":
        extra = _study_columns(entry, registry)[1]
    if extra:
        lines += _wrapped(EXTRA[kind], extra)
    options = getattr(entry, "options", None) if kind in ("protocol", "executor") else getattr(entry, "parameters", None)
    if options:
        rows = []
        for key, opt in options.items():
            allowed = ", ".join(map(str, opt.choices)) if opt.choices else opt.bounds()
            rows.append([key, opt.type.__name__ + ("*" if opt.multiple else ""), repr(opt.default), allowed or "any", opt.help])
        lines += ["", _fit(rows, ["option", "type", "default", "allowed", "help"], {3: 1, 4: 3})]
        if any(opt.multiple for opt in options.values()):
            lines.append("(* may be given several times)")
    return "\n".join(lines)


def list_command(args) -> int:
    wanted = args.kind
    # `list plugins` is how a name collision is looked into: it lists it rather than stopping with it
    registry = build_registry(args.disable_plugin, report=wanted == "plugins")
    kinds = list(KINDS)
    if wanted:
        by_name = {PLURAL[k]: k for k in KINDS} | {k: k for k in KINDS}
        if wanted == "plugins":
            kinds = []
        elif wanted in by_name:
            kinds = [by_name[wanted]]
        else:
            valid = [*PLURAL.values(), "plugins"]
            raise UsageError(f"unknown kind {wanted!r}{did_you_mean(wanted, valid)} valid: {', '.join(valid)}")
    if getattr(args, "name", None):
        if not kinds or len(kinds) > 1:
            raise UsageError(f"liftbench list KIND NAME takes one kind ({', '.join(PLURAL.values())}), got {wanted!r}")
        print(_detail(kinds[0], args.name, registry))
        return ExitCode.OK
    for kind in kinds:
        print(f"\n{PLURAL[kind]}:")
        print(_table(kind, registry))
    if kinds and not wanted:
        print("\n(liftbench list KIND NAME shows one entry in full, with its options)")
    if not wanted or wanted == "plugins":
        infos = list(registry.plugins.values())
        rows = [[i.name, i.distribution, i.version, "error (below)" if i.error else "loaded"] for i in infos]
        print("\nplugins:")
        print(_fit(rows, ["plugin", "distribution", "version", "status"], {3: 1}))
        for info in infos:  # whole, never wrapped: a message to read and to search for
            if info.error:
                print(f"\n{info.name}: {info.error}")
    return ExitCode.OK
