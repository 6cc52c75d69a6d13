"""In-process protocol runs on the tiny built-in backbones: a run context that remembers what it handed out.

Shared by the protocol tests (``finetune``, ``linear-aug``, ``lora``): each builds the run key a command would
and calls the protocol directly, so a test can look at the fresh backbone a protocol trained.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from liftbench.run.context import RunContext
from liftbench.run.spec import RunSpec


@dataclass
class RecordingContext(RunContext):
    """Remembers every fresh backbone it hands out, with a copy of its weights at that moment."""

    fresh: list = field(default_factory=list)
    logged: list = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.log = self.logged.append

    def backbone(self, fresh: bool = False):
        model, info = super().backbone(fresh)
        if fresh:
            self.fresh.append((model, copy.deepcopy(model.state_dict())))
        return model, info


def recording_context(registry, tmp_path, protocol: str, backbone: str = "tiny-vit", strategy: str = "pcg", **options) -> RecordingContext:
    """The run context of one tiny run of ``protocol`` on the synthetic set (6 volumes a split, 32^3)."""
    spec = RunSpec(
        dataset="synthetic", size=32, backbone=backbone, weights="random", strategy=strategy,
        schedule="HW,DW,DH,HW" if strategy == "pcg" else "", protocol=protocol, seed=0,
        options=json.dumps({"iterations": 3, "warmup": 1, "batch_size": 3, **options}, sort_keys=True),
        dataset_options=json.dumps({"n_train": 6, "n_val": 6, "n_test": 6}, sort_keys=True),
    )
    return RecordingContext(spec, registry, tmp_path / "cache")


def metrics_of(result) -> dict:
    """A protocol result's metrics by (split, name)."""
    return {(split, name): value for split, name, value in result.metrics}
