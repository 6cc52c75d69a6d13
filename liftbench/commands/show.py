"""``liftbench show``: Figure 1 — PCA of frozen lifted features on the HW, DW and DH planes (:mod:`liftbench.report.figure1`).

One figure per chosen volume, ``<out>/<dataset>_<backbone>_<split><index>.png|svg``, with every chosen strategy
the backbone's family can lift (``all``: every such one); the cross-slice coherence of each is printed and drawn.
"""

from __future__ import annotations

from pathlib import Path

from liftbench.errors import ExitCode, UsageError


def add_parser(sub) -> None:
    show = sub.add_parser("show", help="Figure 1: PCA of frozen lifted features on the HW, DW and DH planes of chosen volumes")
    show.add_argument("--dataset", default="diagnostic", help="dataset (default diagnostic)")
    show.add_argument("--backbone", default="vit-tiny-shapes", help="one backbone (default vit-tiny-shapes)")
    show.add_argument("--strategies", default="all", help="comma list, glob or 'all' (default: all the backbone's family lifts)")
    show.add_argument("--volumes", default="0", help="comma list of volume indexes or ids in the split (default 0)")
    show.add_argument("--split", default="test", help="train, val or test (default test)")
    show.add_argument("--size", type=int, help="input size (default: the dataset's own)")
    show.add_argument("--weights", default="pretrained", help="pretrained (default), random[:SEED] or a checkpoint path")
    show.add_argument("--data-root", help="folder with dataset files (else $LIFTBENCH_DATA_ROOT)")
    show.add_argument("--out", default="figure1", help="folder for the figures (default figure1)")


def _volumes(split, text: str, name: str) -> list[tuple[int, str]]:
    """(index, name) of each volume the user chose, by index or by id."""
    ids = list(split.ids) if split.ids is not None else []
    chosen = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        if item in ids:
            chosen.append((ids.index(item), item))
        elif item.isdigit() and int(item) < len(split):
            chosen.append((int(item), item))
        else:
            valid = f"indexes 0..{len(split) - 1}" + (f" or ids such as {', '.join(ids[:3])}" if ids else "")
            raise UsageError(f"no volume {item!r} in the {name} split; valid: {valid}")
    if not chosen:
        raise UsageError("--volumes is empty; give indexes such as 0,3")
    return chosen


def show_command(args) -> int:
    import os

    from liftbench.datasets.volumes import SPLITS
    from liftbench.plugin.manager import build_registry
    from liftbench.report.figure1 import draw, panels
    from liftbench.report.plots import file_stem
    from liftbench.run.inputs import load_dataset
    from liftbench.study.grid_runs import size_for

    registry = args.registry or build_registry(args.disable_plugin)
    if args.split not in SPLITS:
        raise UsageError(f"unknown split {args.split!r}; valid: {', '.join(SPLITS)}")
    dataset_entry = registry.get("dataset", args.dataset)
    backbone = registry.get("backbone", args.backbone)
    strategies = registry.resolve("strategy", args.strategies)
    liftable = [s.name for s in strategies if backbone.family in s.families]
    names = {s.name for s in strategies}
    twins = {s.name for s in strategies if s.same_as.get(backbone.family) in names}  # pcm is pcg for CNNs: once
    if args.strategies.strip().lower() != "all" and len(liftable) < len(strategies):
        bad = [s.name for s in strategies if s.name not in liftable]
        raise UsageError(f"strategy {', '.join(bad)} cannot lift {backbone.name!r} ({backbone.family}); valid: "
                         f"{', '.join(s.name for s in registry.entries('strategy') if backbone.family in s.families)}")  # fmt: skip
    liftable = [name for name in liftable if name not in twins]
    if not liftable:
        raise UsageError(f"no chosen strategy lifts {backbone.name!r} ({backbone.family})")
    size = size_for(dataset_entry, args.size)
    data_root = args.data_root or os.environ.get("LIFTBENCH_DATA_ROOT")
    dataset = load_dataset(dataset_entry, size, data_root, {})
    split = dataset.splits[args.split]
    out = Path(args.out)
    for index, name in _volumes(split, args.volumes, args.split):
        volume = split.volumes[index]
        rows = panels(backbone.name, liftable, volume, weights=args.weights, registry=registry)
        label = dataset.label_names[int(split.labels[index])] if dataset.label_names else str(int(split.labels[index]))
        title = f"{dataset_entry.name} {args.split} volume {name} ({label}), {backbone.name}: one PCA over all strategies"
        stem = out / file_stem(dataset_entry.name, backbone.name, f"{args.split}{name}")
        try:
            written = draw(volume, rows, stem, title)
        except OSError as exc:
            raise UsageError(f"cannot write {stem}.png: {exc.strerror or exc}") from None
        for row in rows:
            print(f"{dataset_entry.name} {args.split} {name} {backbone.name} {row.strategy}: {row.coherence.text()}")
        print(f"wrote {', '.join(map(str, written))}")
    return ExitCode.OK
