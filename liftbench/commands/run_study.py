"""``liftbench run``'s arguments as a study: ``--study NAME|FILE`` with the flags on top, the flags alone as
a one-grid study, or — when nothing is chosen — the registered ``demo`` study.

Command-line flags override the study file: a grid flag (``--seeds``, ``--backbones``, ...) replaces that
field in every grid (``--protocol`` also drops what only the study's old protocols used: their options, and
the leaderboard's protocols and metrics), ``--opt``/protocol flags/``--dataset-opt`` are merged over the grids'
options, and ``--results``, ``--executor``, ``--device`` and executor flags replace the study's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from liftbench.commands.plugin_flags import executor_flags, flag_of, protocol_flags
from liftbench.commands.run_options import key_values, parse_schedules, parse_seeds, parse_sizes
from liftbench.errors import UsageError
from liftbench.plugin.registry import Registry
from liftbench.study.model import (
    DEFAULT_RESULTS,
    STUDY_FILE,
    Grid,
    Study,
    device_of,
    read_study,
    registered_study,
)
from liftbench.study.toml_file import is_record

DEMO = "demo"
# flag -> grid field; choosing any of them (without --study) is choosing a grid: the demo is not run
GRID_FLAGS = {"strategies": "strategies", "backbones": "backbones", "datasets": "datasets", "protocol": "protocols",
              "weights": "weights", "size": "size", "seeds": "seeds", "schedule": "schedule"}  # fmt: skip


def load_study(text: str, registry: Registry) -> Study:
    """``--study``: a file (a path that exists, or ends in .toml), a results folder holding its ``study.toml``,
    or the name of a registered study. A record (``RESULTS/study.toml``, as :func:`~liftbench.study.plan.record`
    writes it) runs into the folder it lies in, from whatever directory it is run: its relative ``results`` was
    written relative to where the first run started, which need not be here."""
    path = Path(text)
    if path.is_dir():
        if not (path / STUDY_FILE).is_file():
            raise UsageError(f"--study {text!r} is a folder without a {STUDY_FILE}; give a study file, a results "
                             f"folder holding one, or a study's name (liftbench list studies)")  # fmt: skip
        path = path / STUDY_FILE
    if not (path.is_file() or text.endswith(".toml")):
        return registered_study(registry.get("study", text))
    study = read_study(path)
    if path.name == STUDY_FILE and is_record(path) and not Path(study.results).is_absolute():
        study = replace(study, results=str(path.parent))
    return study


def _grid_values(args) -> dict:
    """The grid fields the user gave as flags, as a :class:`Grid` holds them."""
    given = {}
    for flag, name in GRID_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if name == "seeds":
            value = tuple(parse_seeds(str(value)))
        elif name == "size":
            value = parse_sizes(str(value))
        elif name == "schedule":
            value = parse_schedules(str(value))
        elif name in ("strategies", "backbones", "datasets", "protocols"):
            value = tuple(part.strip() for part in str(value).split(",") if part.strip()) or (str(value),)
        given[name] = value
    return given


def _options(args) -> tuple[dict, dict]:
    """(protocol flags, ``--opt`` values and ``--quick``): ``--opt`` wins where both name an option."""
    options = key_values(args.opt, "--opt")
    if args.quick:
        options["quick"] = True
    flags = {name: value for name, value in protocol_flags(args).items() if name not in options}
    return flags, options


def _keyed(grid: Grid, protocol, registry: Registry) -> str:
    """The key of ``grid.protocol_options`` that names ``protocol`` (it may be an alias), else its name."""
    return next((key for key in grid.protocol_options if registry.has("protocol", key)
                 and registry.get("protocol", key).name == protocol.name), protocol.name)  # fmt: skip


def _with_flags(grid: Grid, flags: dict, registry: Registry) -> Grid:
    """The grid with the protocol flags applied, each only to the grid's protocols that declare it *as a flag*
    (``Option(flag=True)``): a flag never sets an option a protocol declared without one, whichever plugin
    made the flag. Where every protocol of the grid declaring the name owns the flag it is a grid option (as
    ``--opt``); where some declare it without a flag it goes to the owners' ``protocol_options`` only. A flag
    that sets nothing in the grid is a usage error naming its owners."""
    if not flags:
        return grid
    try:
        protocols = registry.resolve("protocol", grid.protocols)
    except UsageError:
        return grid  # an unknown protocol: resolving the study says so, with the study's name
    options, per = dict(grid.options), {k: dict(v) for k, v in grid.protocol_options.items()}
    for name, value in flags.items():
        owners = [p for p in protocols if name in p.options and p.options[name].flag]
        others = [p.name for p in protocols if name in p.options and not p.options[name].flag]
        if not owners:
            every = [p.name for p in registry.entries("protocol") if name in p.options and p.options[name].flag]
            hint = f"; to set {name} of {', '.join(others)} use --opt {name}=VALUE" if others else ""
            raise UsageError(f"{flag_of(name)} sets {name!r} of protocol(s) {', '.join(every)} only, and this grid "
                             f"runs {', '.join(p.name for p in protocols)}{hint}")  # fmt: skip
        if not others:
            options[name] = value
            for opts in per.values():
                if name in opts:
                    opts[name] = value
            continue
        for owner in owners:
            per.setdefault(_keyed(grid, owner, registry), {})[name] = value
    return replace(grid, options=options, protocol_options=per)


def _with_options(grid: Grid, options: dict, dataset_options: dict) -> Grid:
    if not options and not dataset_options:
        return grid
    per_protocol = {
        name: {**opts, **{k: v for k, v in options.items() if k in opts}}
        for name, opts in grid.protocol_options.items()
    }
    return replace(grid, options={**grid.options, **options}, protocol_options=per_protocol,
                   dataset_options={**grid.dataset_options, **dataset_options})  # fmt: skip


def _for_protocols(grid: Grid, registry: Registry) -> tuple[Grid, list[str]]:
    """A study grid whose protocols ``--protocol`` replaced, without the options that were the old protocols':
    ``protocol_options`` of a protocol no longer in the grid, and ``options`` no new protocol declares.
    Returns the grid and what was dropped (options given on the command line are added later, and checked)."""
    protocols = registry.resolve("protocol", grid.protocols)
    names = {alias for p in protocols for alias in (p.name, *p.aliases)}
    declared = {key for p in protocols for key in p.options} | {"quick"}
    dropped = [f"option {key}" for key in grid.options if key not in declared]
    dropped += [f"protocol_options.{name}" for name in grid.protocol_options if name not in names]
    kept = replace(grid, options={k: v for k, v in grid.options.items() if k in declared},
                   protocol_options={n: o for n, o in grid.protocol_options.items() if n in names})  # fmt: skip
    return kept, dropped


def study_from_args(args, registry: Registry) -> tuple[Study, bool]:
    """(the study to run, whether it is the demo)."""
    if args.device:
        device_of(args.device, "--device")
    given = _grid_values(args)
    demo = not given and not args.study
    if args.study or demo:
        study = load_study(args.study or DEMO, registry)
        study = study.with_grids(**given)
        if "protocols" in given:
            grids, dropped = zip(*(_for_protocols(g, registry) for g in study.grids), strict=True)
            study = replace(study, grids=grids)
            dropped = list(dict.fromkeys(item for items in dropped for item in items))
            layout = study.leaderboard
            if layout.protocols and set(layout.protocols) != set(given["protocols"]):  # the tables follow the runs
                study = replace(study, leaderboard=replace(layout, protocols=given["protocols"], metrics=None))
                dropped.append("[leaderboard] protocols and metrics")
            if dropped:
                print(f"--protocol {args.protocol}: dropped what only the study's old protocols used: {', '.join(dropped)}")
    else:
        results = args.results or DEFAULT_RESULTS
        study = Study(name=Path(results).name or "study", description="from the command line", results=results,
                      grids=(replace(Grid(seeds=(0,)), **given),))  # fmt: skip
    (flags, options), dataset_options = _options(args), key_values(args.dataset_opt, "--dataset-opt")
    grids = (_with_options(_with_flags(g, flags, registry), options, dataset_options) for g in study.grids)
    study = replace(study, grids=tuple(grids))
    executor = registry.get("executor", args.executor or study.executor).name
    flags = executor_flags(args, executor)
    # the study's executor options hold only for the study's executor: another one given as a flag starts afresh
    kept = study.executor_options if executor == registry.get("executor", study.executor).name else {}
    executor_options = {**kept, **flags}
    return replace(study, results=args.results or study.results, executor=executor, executor_options=executor_options,
                   device=args.device or study.device), demo  # fmt: skip
