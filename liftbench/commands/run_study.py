"""``liftbench run``'s arguments as a study: ``--study NAME|FILE`` with the flags on top, the flags alone as
a one-grid study, or — when nothing is chosen — the registered ``demo`` study.

Command-line flags override the study file: a grid flag (``--seeds``, ``--backbones``, ...) replaces that
field in every grid, ``--opt``/protocol flags/``--dataset-opt`` are merged over the grids' options, and
``--results``, ``--executor``, ``--device`` and executor flags replace the study's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from liftbench.commands.plugin_flags import executor_flags, protocol_flags
from liftbench.commands.run_options import key_values, parse_seeds
from liftbench.registry import Registry
from liftbench.study import DEFAULT_RESULTS, Grid, Study, read_study

DEMO = "demo"
# flag -> grid field; choosing any of them (without --study) is choosing a grid: the demo is not run
GRID_FLAGS = {"strategies": "strategies", "backbones": "backbones", "datasets": "datasets", "protocol": "protocols",
              "weights": "weights", "size": "size", "seeds": "seeds", "schedule": "schedule"}  # fmt: skip


def load_study(text: str, registry: Registry) -> Study:
    """``--study``: a file (a path that exists, or ends in .toml) or the name of a registered study."""
    path = Path(text)
    if path.is_file() or text.endswith(".toml"):
        return read_study(path)
    return registry.get("study", text).load()


def _grid_values(args) -> dict:
    """The grid fields the user gave as flags, as a :class:`Grid` holds them."""
    given = {}
    for flag, name in GRID_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if name == "seeds":
            value = tuple(parse_seeds(str(value)))
        elif name in ("strategies", "backbones", "datasets", "protocols"):
            value = tuple(part.strip() for part in str(value).split(",") if part.strip()) or (str(value),)
        given[name] = value
    return given


def _options(args) -> dict:
    options = dict(protocol_flags(args))
    options.update(key_values(args.opt, "--opt"))
    if args.quick:
        options["quick"] = True
    return options


def _with_options(grid: Grid, options: dict, dataset_options: dict) -> Grid:
    if not options and not dataset_options:
        return grid
    per_protocol = {
        name: {**opts, **{k: v for k, v in options.items() if k in opts}}
        for name, opts in grid.protocol_options.items()
    }
    return replace(grid, options={**grid.options, **options}, protocol_options=per_protocol,
                   dataset_options={**grid.dataset_options, **dataset_options})  # fmt: skip


def study_from_args(args, registry: Registry) -> tuple[Study, bool]:
    """(the study to run, whether it is the demo)."""
    given = _grid_values(args)
    demo = not given and not args.study
    if args.study or demo:
        study = load_study(args.study or DEMO, registry)
        study = replace(study, grids=tuple(replace(g, **given) for g in study.grids))
    else:
        results = args.results or DEFAULT_RESULTS
        study = Study(name=Path(results).name or "study", description="from the command line", results=results,
                      grids=(replace(Grid(seeds=(0,)), **given),))  # fmt: skip
    options, dataset_options = _options(args), key_values(args.dataset_opt, "--dataset-opt")
    study = replace(study, grids=tuple(_with_options(g, options, dataset_options) for g in study.grids))
    executor = registry.get("executor", args.executor or study.executor).name
    flags = executor_flags(args, executor)
    # the study's executor options hold only for the study's executor: another one given as a flag starts afresh
    kept = study.executor_options if executor == registry.get("executor", study.executor).name else {}
    executor_options = {**kept, **flags}
    return replace(study, results=args.results or study.results, executor=executor, executor_options=executor_options,
                   device=args.device or study.device), demo  # fmt: skip
