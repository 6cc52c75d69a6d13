"""``liftbench list [kind]``: every registered thing, where it comes from, what it does."""

from __future__ import annotations

from tabulate import tabulate

from liftbench.errors import ExitCode, UsageError
from liftbench.plugins import build_registry
from liftbench.registry import KINDS, PLURAL, did_you_mean


def _study_columns(entry, registry) -> list[str]:
    """description, planned runs and leaderboard layout of a study; a study naming something not
    registered shows ``?`` and why (it errors only when run)."""
    from liftbench.study_plan import count_runs

    try:
        study = entry.load()
    except UsageError as exc:
        return [entry.description, "?", f"(unreadable: {exc})"]
    runs, why = count_runs(study, registry)
    return [entry.description, str(runs) if runs is not None else f"? ({why.split(': ', 1)[-1]})", study.leaderboard.describe()]


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
    for kind in kinds:
        rows = []
        for entry in registry.entries(kind):
            row = [entry.name, ", ".join(entry.aliases), entry.description]
            if kind == "strategy":
                notes = entry.notes
                row.append(", ".join(f"{f} ({notes[f]})" if f in notes else f for f in entry.families))
            elif kind == "backbone":
                row.append(entry.family)
            elif kind in ("protocol", "executor"):
                row.append(", ".join(f"{k}={o.default}" for k, o in entry.options.items()))
            elif kind == "dataset":
                row.append(", ".join(entry.parameters or ()))
            elif kind == "study":
                row[2:3] = _study_columns(entry, registry)
            row.append(entry.provider)
            rows.append(row)
        extra = {"strategy": "lifts", "backbone": "family", "protocol": "options (defaults)", "executor": "options", "dataset": "options",
                 "study": ""}  # fmt: skip
        headers = ["name", "aliases", "description", extra[kind], "plugin"]
        if kind == "study":
            headers = ["name", "aliases", "description", "runs", "leaderboard", "plugin"]
        print(f"\n{PLURAL[kind]}:")
        print(tabulate(rows, headers=headers, tablefmt="simple") if rows else "  (none)")
    if not wanted or wanted == "plugins":
        rows = [[i.name, i.distribution, i.version, i.error or "loaded"] for i in registry.plugins.values()]
        print("\nplugins:")
        print(tabulate(rows, headers=["plugin", "distribution", "version", "status"], tablefmt="simple"))
    return ExitCode.OK
