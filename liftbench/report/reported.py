"""The PlaneCycle paper's published numbers as liftbench result rows (``source="reported"``).

The paper's Tables 1–3 are kept, one value a row, in ``liftbench/reference/planecycle_paper_tables.csv``
(percent). :func:`reported_rows` turns them into rows of :data:`liftbench.run.results.SCHEMA`: values become
fractions (``value / 100``; the leaderboard multiplies back), the paper's own printed averages stay as rows
with ``dataset="avg"`` so the leaderboard can show (and audit) them as printed, and every row cites its table.
Reported rows have no seed (the paper gives the mean of its runs only) and one ``run_key`` per
(table, protocol, backbone, strategy), a stable hash.

A reported row carries the name of the liftbench protocol that reproduces how it was measured, so the
leaderboard puts it in that protocol's table (:data:`PROTOCOLS`): Table 1's linear probing is the
augmented probe as the authors' released code runs it (``table1-probe``), Table 2's fine-tuning
``table2-finetune`` — never the cached ``linear`` probe, which trains without augmentation. Table 1's
R-3D/R-ACS rows (ResNet-50 fine-tuned with MedMNIST v2's own recipe) stay ``finetune``; Table 3's
segmentation rows go to ``featdice``, ``seg-linear`` (frozen backbone + decoder) and ``seg-finetune``.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa

from liftbench.errors import UsageError
from liftbench.run.results import rows_to_table, write_atomic

DEFAULT_CSV = Path(__file__).resolve().parent.parent / "reference" / "planecycle_paper_tables.csv"
DEFAULT_OUT_DIR = Path("results") / "reported"
FILE_NAME = "planecycle.parquet"
PAPER = "Yu, Li, Yang: PlaneCycle: Training-Free 2D-to-3D Lifting of Foundation Models Without Adapters"
COLUMNS = ("table", "protocol", "backbone", "strategy", "dataset", "metric", "value")

# The CSV already uses liftbench's names; anything else is refused rather than guessed.
BACKBONES = {"vits": "ViT-S/16", "vitb": "ViT-B/16", "vitl": "ViT-L/16", "resnet50": "ResNet-50", "vivit": "ViViT"}
PAPER_POOLING = {"pcg": "adaptive", "pcm": "mean"}  # the paper's PCg pools global tokens by groups, PCm by the mean
STRATEGIES = ("2d", "3d", "acs", "pcm", "pcg", "vivit")
INPUT_SIZE = {"1": 64, "2": 64}  # Tables 1-2: MedMNIST 3D at 64^3; Table 3 does not state one
# (table, the CSV's protocol) -> the liftbench protocol that measures what the paper measured there
PROTOCOLS = {("1", "linear"): "table1-probe", ("2", "finetune"): "table2-finetune", ("3", "linear"): "seg-linear",
             ("3", "finetune"): "seg-finetune"}  # fmt: skip


def citation(table: str | int) -> str:
    return f"{PAPER} (Table {table})"


def run_key(table: str, protocol: str, backbone: str, strategy: str) -> str:
    text = "|".join(("planecycle-paper", str(table), protocol, backbone, strategy))
    return "reported-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def reported_rows(csv_path: Path = DEFAULT_CSV) -> list[dict[str, Any]]:
    """The CSV's values as result rows (dicts with the SCHEMA's columns; the rest are left null)."""
    path = Path(csv_path)
    if not path.is_file():
        raise UsageError(f"reported-results CSV {str(path)!r} does not exist")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise UsageError(f"{path}: expected the columns {', '.join(COLUMNS)}, found {reader.fieldnames}")
        records = list(reader)
    rows = []
    for line, rec in enumerate(records, start=2):
        backbone, strategy = rec["backbone"].strip(), rec["strategy"].strip()
        if backbone not in BACKBONES or strategy not in STRATEGIES:
            raise UsageError(f"{path}:{line}: unknown backbone {backbone!r} or strategy {strategy!r}")
        table, protocol = rec["table"].strip(), rec["protocol"].strip()
        rows.append(
            {
                "run_key": run_key(table, protocol, backbone, strategy),
                "kind": "run",
                "source": "reported",
                "citation": citation(table),
                "dataset": rec["dataset"].strip(),
                "input_size": INPUT_SIZE.get(table),
                "backbone": backbone,
                "backbone_model": BACKBONES[backbone],
                "weights": "pretrained",
                "strategy": strategy,
                "pooling": PAPER_POOLING.get(strategy),
                "protocol": PROTOCOLS.get((table, protocol), protocol),
                "seed": None,
                "split": "test",
                "metric": rec["metric"].strip(),
                "value": float(rec["value"]) / 100.0,
                "status": "ok",
            }
        )
    return rows


def reported_table(csv_path: Path = DEFAULT_CSV) -> pa.Table:
    return rows_to_table(reported_rows(csv_path))


def write_reported(csv_path: Path = DEFAULT_CSV, out_dir: Path = DEFAULT_OUT_DIR) -> Path:
    """Write the reported rows to ``<out_dir>/planecycle.parquet`` atomically and return that path."""
    return write_atomic(reported_table(csv_path), Path(out_dir) / FILE_NAME)
