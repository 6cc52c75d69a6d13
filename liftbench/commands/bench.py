"""``liftbench bench``: measure the cost of every lifting over volume sizes and batch sizes.

Random weights by default: cost does not depend on weight values, and a benchmark should not need a
download. Results go to ``<results>/<key>.parquet`` (``kind="bench"``), ``<results>/bench.md`` and
``<results>/plots/``. A failed or out-of-memory configuration is recorded and the sweep goes on; the
command then exits with status 1, like ``liftbench run`` with failed runs.

``--seg frozen|finetune`` times one training step of ``seg-linear`` / ``seg-finetune`` instead (dense maps,
the authors' decoder, their loss, AdamW; see :mod:`liftbench.cost.bench.segstep`), for ``--seg-classes`` classes
(6: MMWHS-like, 2: LIDC-like binary with one logit channel). ``--checkpoint`` (activation checkpointing)
applies wherever gradients flow through the backbone: ``--train`` and ``--seg finetune``. ``--train --lora R``
trains LoRA adapters of rank R on the frozen backbone instead of every parameter (:mod:`liftbench.cost.bench.sweep`),
so full fine-tuning and LoRA are measured at the same settings.
"""

from __future__ import annotations

from pathlib import Path

from liftbench.errors import ExitCode, UsageError

DTYPES = ("fp32", "bf16")
SEG_MODES = ("frozen", "finetune")


def add_parser(subparsers) -> None:
    """Add the ``bench`` subcommand to the CLI's subparsers."""
    bench = subparsers.add_parser("bench", help="measure time, memory and FLOPs of each lifting over volume sizes")
    bench.add_argument("--strategies", default="all", help="comma list, glob or 'all' (default: all)")
    bench.add_argument("--backbones", default="vits", help="comma list, glob or 'all' (default: vits)")
    bench.add_argument("--sizes", default="32,64", help="volume sizes (voxels per side), comma list (default: 32,64)")
    bench.add_argument("--batch", default="1", help="batch sizes, comma list (default: 1)")
    bench.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    bench.add_argument("--dtype", default="fp32", help="fp32 or bf16 (autocast) (default fp32)")
    bench.add_argument("--train", action="store_true", help="measure forward + backward + AdamW step instead of forward")
    bench.add_argument("--seg", default="", metavar="frozen|finetune",
                       help="time one segmentation training step instead (frozen: seg-linear, finetune: seg-finetune)")
    bench.add_argument("--seg-classes", type=int, default=None,
                       help="classes of the --seg step: 6 (MMWHS-like, default) or 2 (LIDC-like, one logit channel)")
    bench.add_argument("--checkpoint", action="store_true",
                       help="activation checkpointing of the ViT blocks (with --train or --seg finetune)")
    bench.add_argument("--lora", type=int, default=0, metavar="RANK",
                       help="with --train: train LoRA adapters of this rank (peft, alpha 2*RANK) on the frozen backbone "
                       "instead of every parameter (default 0: full fine-tuning)")
    bench.add_argument("--repeats", type=int, default=5, help="timed calls per configuration (default 5)")
    bench.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (default 2)")
    bench.add_argument("--weights", default="random", help="random (default), pretrained, or a checkpoint path")
    bench.add_argument("--results", default="results/bench", help="results folder (default results/bench)")


def parse_ints(text: str, flag: str) -> tuple[int, ...]:
    """``32,64,128`` as positive integers, in the order given, without duplicates."""
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"invalid {flag} {text!r}: give positive integers separated by commas, e.g. 32,64") from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"invalid {flag} {text!r}: give positive integers separated by commas, e.g. 32,64")
    return tuple(dict.fromkeys(values))


def check_device(device: str) -> str:
    """``--device``, well formed and present on this machine (a benchmark measures here)."""
    from liftbench.devices import require_present

    return require_present(device, "--device")


def check_seg(args) -> tuple[str, int]:
    """``(--seg mode or "", classes)``, refusing combinations that would measure something else than asked."""
    seg = getattr(args, "seg", "") or ""
    classes = getattr(args, "seg_classes", None)
    checkpoint = getattr(args, "checkpoint", False)
    if seg and seg not in SEG_MODES:
        raise UsageError(f"invalid --seg {seg!r}: use {' or '.join(SEG_MODES)}")
    if seg and args.train:
        raise UsageError("--seg and --train measure different steps: give one of them")
    if classes is not None and not seg:
        raise UsageError("--seg-classes applies to the segmentation step: add --seg frozen or --seg finetune")
    if classes is not None and classes < 2:
        raise UsageError(f"invalid --seg-classes {classes}: at least 2 (background counted; 2: binary)")
    lora = getattr(args, "lora", 0)
    if lora < 0 or (lora and not args.train):
        raise UsageError(f"invalid --lora {lora}: a LoRA rank >= 1 for the --train step (0: full fine-tuning)"
                         + ("" if args.train or lora < 0 else "; add --train"))  # fmt: skip
    if checkpoint and not (args.train or seg == "finetune"):
        raise UsageError("--checkpoint is for a backward through the backbone: add --train or --seg finetune")
    return seg, 6 if classes is None else classes


def bench_command(args) -> int:
    from liftbench.cost.bench.report import write_report
    from liftbench.cost.bench.sweep import BenchSettings, run_sweep
    from liftbench.plugin.manager import build_registry, warn_plugin_errors
    from liftbench.run.results import check_writable, read_results

    if args.dtype not in DTYPES:
        raise UsageError(f"invalid --dtype {args.dtype!r}: use {' or '.join(DTYPES)}")
    if args.repeats < 1 or args.warmup < 0:
        raise UsageError("--repeats must be at least 1 and --warmup at least 0")
    seg, seg_classes = check_seg(args)
    settings = BenchSettings(
        sizes=parse_ints(args.sizes, "--sizes"), batches=parse_ints(args.batch, "--batch"),
        device=check_device(args.device), dtype=args.dtype, train=args.train,
        warmup=args.warmup, repeats=args.repeats, weights=args.weights,
        seg=seg, seg_classes=seg_classes, checkpoint=args.checkpoint, lora_rank=getattr(args, "lora", 0),
    )
    registry = build_registry(getattr(args, "disable_plugin", []))
    warn_plugin_errors(registry)
    backbones = registry.resolve("backbone", args.backbones)
    strategies = registry.resolve("strategy", args.strategies)
    results_dir = check_writable(Path(args.results))
    if settings.weights == "random":
        print("liftbench bench: random weights (cost does not depend on weight values)")
    rows = run_sweep(registry, backbones, strategies, settings, results_dir, log=lambda msg: print(msg, flush=True))
    written = write_report(read_results(results_dir).frame, results_dir)
    failed = sum(1 for r in rows if r["status"] == "failed" and r.get("metric") in (None, ""))
    print(f"\nwrote {len({r['run_key'] for r in rows})} result files, {written[0]} and {len(written) - 1} plot files under {results_dir}/")
    if failed:
        print(f"{failed} configurations failed (recorded with their error in {results_dir}/)")
    return ExitCode.RUNS_FAILED if failed else ExitCode.OK
