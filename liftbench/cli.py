"""``liftbench run | status | list | leaderboard | bench | show``: the command line.

User mistakes (unknown names, bad options, missing files, unwritable folders) print one clear
message and exit with :attr:`ExitCode.USAGE` — never a traceback. A grid with failed runs exits with
:attr:`ExitCode.RUNS_FAILED`. Protocols and executors bring their own flags (declared at registration,
see :mod:`liftbench.commands.plugin_flags`), so the parser is built after the plugins are loaded.
"""

from __future__ import annotations

import argparse
import os
import sys

from liftbench.errors import ExitCode, UsageError


def _version() -> str:
    import liftbench
    from liftbench.run.provenance import source_revision

    commit, dirty = source_revision()
    where = f" (commit {commit[:12]}{', with uncommitted changes' if dirty else ''})" if commit else ""
    return f"liftbench {liftbench.__version__}{where}"


def build_parser(registry=None) -> argparse.ArgumentParser:
    """The full parser; ``registry`` adds the flags its protocols and executors declare."""
    disable_help = "do not load this plugin (repeatable; also LIFTBENCH_DISABLE_PLUGINS=a,b)"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--disable-plugin", action="append", default=[], metavar="NAME", help=disable_help)
    parser = argparse.ArgumentParser(prog="liftbench", description="How should a pretrained 2D backbone be lifted to 3D volumes?")
    parser.add_argument("--disable-plugin", dest="disable_plugin_global", action="append", default=[], metavar="NAME", help=disable_help)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", parents=[common], help="run a grid (no arguments: the demo on the synthetic set)")
    run.add_argument("--study", help="a study file (.toml), a results folder holding its study.toml, or a registered study's name "
                     "(liftbench list studies); flags override it")
    run.add_argument("--strategies", help="comma list, glob or 'all' (default: all)")
    run.add_argument("--backbones", help="comma list, glob or 'all' (default: vits)")
    run.add_argument("--datasets", help="comma list, glob or 'all' (default: synthetic)")
    run.add_argument("--protocol", "--protocols", dest="protocol", help="comma list (default: linear)")
    run.add_argument("--seeds", help="a count (5 = seeds 0..4) or a list (0,3,7); default 1")
    run.add_argument("--size", metavar="N[,N...]", help="input size, or a comma list to run each: 28, 32 or 64 for MedMNIST/synthetic "
                     "(default: each dataset's own — 64, LIDC 160; the demo uses 32)")
    run.add_argument("--weights", help="pretrained (default), random (seed 0), random:SEED, or a checkpoint path")
    run.add_argument("--schedule", help="plane schedule for PlaneCycle, e.g. HW,DW,DH,HW (default); several, ';'-separated, "
                     "run each: 'HW,DW,DH,HW;HW,DH,DW,HW'")
    run.add_argument("--results", help="results folder (default results/latest; the demo writes liftbench-demo)")
    run.add_argument("--data-root", help="folder with dataset files (else $LIFTBENCH_DATA_ROOT, else the dataset's default)")
    run.add_argument("--cache-dir", help="feature cache (default $LIFTBENCH_CACHE or ~/.cache/liftbench)")
    run.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the study's, else cpu)")
    run.add_argument("--executor", help="where runs execute (default: the study's, else local)")
    run.add_argument("--force", action="store_true", help="rerun runs that already have a result")
    run.add_argument("--retry-failed", action="store_true", help="rerun runs recorded as failed")
    run.add_argument("--quick", action="store_true", help="smoke-test preset: few iterations")
    run.add_argument("--opt", action="append", metavar="KEY=VALUE", help="any protocol option, flag or not (liftbench list protocols shows them)")
    run.add_argument("--dataset-opt", action="append", metavar="KEY=VALUE", help="dataset option, e.g. n_train=200")
    run.add_argument("--no-leaderboard", action="store_true", help="do not print the leaderboard at the end")
    run.add_argument("-v", "--verbose", action="count", default=0, help="per-run details: feature cache hits and misses, "
                     "selected steps (-vv: debug)")
    run.add_argument("--dry-run", action="store_true", help="print the planned grid and its estimated time and memory; run nothing")
    if registry is not None:
        from liftbench.commands.plugin_flags import add_plugin_flags

        add_plugin_flags(run, registry)

    status = sub.add_parser("status", parents=[common], help="done / running / queued / failed runs per cell of a results folder")
    status.add_argument("results_dir", metavar="RESULTS_DIR", nargs="?", default="results/latest", help="results folder (default results/latest)")

    lst = sub.add_parser("list", parents=[common], help="show registered strategies, backbones, datasets, protocols, executors, plugins")
    lst.add_argument("kind", nargs="?", help="one kind (strategies, backbones, ..., studies) or 'plugins'")
    lst.add_argument("name", nargs="?", help="one entry of that kind, shown in full with its options")

    board = sub.add_parser("leaderboard", parents=[common], help="render tables from results folders")
    board.add_argument("dirs", nargs="*", default=["results"], help="results folders (default: results)")
    board.add_argument("--format", default="md", choices=["md", "latex", "html", "csv"])
    board.add_argument("--out", help="write to this file instead of printing")
    board.add_argument("--protocol")
    board.add_argument("--backbones")
    board.add_argument("--datasets")
    board.add_argument("--metric", help="comma list of metrics (default auc,acc)")
    board.add_argument("--baseline", help="strategy to test significance against (paired t-test over seeds)")
    board.add_argument("--reported", dest="reported", action="store_true", default=None, help="show the paper's reported rows beside measured ones")
    board.add_argument("--no-reported", dest="reported", action="store_false")
    board.add_argument("--sort", help="order rows by this column (e.g. avg)")
    board.add_argument("--combine", action="store_true", help="the protocols side by side in one table (the paper's Table 3 layout)")
    board.add_argument("--check", action="store_true", help="fail, naming the file, if a committed table is stale")
    board.add_argument("--write", action="store_true", help="(re)write the committed tables under the results root")
    board.add_argument("--site", metavar="OUT", help="write a static leaderboard site (index + one page per study) into OUT; with --check, verify OUT is current")
    from liftbench.commands.bench import add_parser as add_bench_parser

    add_bench_parser(sub)
    from liftbench.commands.show import add_parser as add_show_parser

    add_show_parser(sub)
    return parser


def _disabled(argv: list[str]) -> list[str]:
    """``--disable-plugin`` values wherever they appear, read before the plugins are loaded."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--disable-plugin", action="append", default=[])
    return pre.parse_known_args(argv)[0].disable_plugin


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        registry = None
        if not argv or argv[0] == "run" or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
            from liftbench.plugin.manager import build_registry

            registry = build_registry(_disabled(argv))
        parser = build_parser(registry)
        args = parser.parse_args(argv)
        args.disable_plugin = args.disable_plugin_global + getattr(args, "disable_plugin", [])
        args.registry = registry
        if args.command in (None, "run"):
            from liftbench.commands.run import run_command

            if args.command is None:
                disabled = args.disable_plugin
                args = parser.parse_args(["run"])
                args.disable_plugin, args.registry = disabled, registry
            return run_command(args)
        if args.command == "list":
            from liftbench.commands.listing import list_command

            return list_command(args)
        if args.command == "status":
            from liftbench.commands.status import status_command

            return status_command(args)
        if args.command == "bench":
            from liftbench.commands.bench import bench_command

            return bench_command(args)
        if args.command == "show":
            from liftbench.commands.show import show_command

            return show_command(args)
        if args.command == "leaderboard":
            from liftbench.commands.board import leaderboard_command

            return leaderboard_command(args)
    except UsageError as exc:
        print(f"liftbench: error: {exc}", file=sys.stderr)
        return ExitCode(exc.exit_status)
    except KeyboardInterrupt:
        print("\nliftbench: interrupted; finished runs are saved — run the same command again to resume", file=sys.stderr)
        return ExitCode.INTERRUPTED
    parser.print_help()
    return ExitCode.USAGE


def entry() -> None:  # pragma: no cover
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `liftbench status | head`: the reader stopped; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
        code = ExitCode.OK
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()


