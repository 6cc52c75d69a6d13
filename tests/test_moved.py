"""Renames without breakage: every module path that moved in the stage layout still imports, as the new
module itself, with a DeprecationWarning naming the new place; a plugin written against the 0.1 docs runs;
and the stable surface (the package root) hands out every name a plugin needs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import pytest

import liftbench
from liftbench.moved import MOVED, new_name
from liftbench.testing import registry_with, run_grid

CHECK_ONE = """
import importlib, json, sys, warnings
old, new = sys.argv[1], sys.argv[2]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    module = importlib.import_module(old)
found = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning) and old in str(w.message)]
print(json.dumps({"same": module is importlib.import_module(new), "warnings": found,
                  "where": [w.filename for w in caught if old in str(w.message)]}))
"""


def _import_fresh(old: str, new: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHECK_ONE, old, new], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_old_module_path_is_the_new_module_with_a_warning(old):
    seen = _import_fresh(old, MOVED[old])
    assert seen["same"], f"{old} is not {MOVED[old]}"
    assert len(seen["warnings"]) == 1 and f"moved to {MOVED[old]}" in seen["warnings"][0]
    assert all("importlib" not in where for where in seen["where"])  # it points at the importing line


def test_a_moved_package_s_submodules_follow_it():
    assert new_name("liftbench.executors.slurm") == "liftbench.run.executors.slurm"
    assert new_name("liftbench.site.pages") == "liftbench.report.site.pages"
    assert new_name("liftbench.datasets") is None and new_name("liftbench.studyx") is None  # prefixes, not substrings
    assert _import_fresh("liftbench.executors.slurm", "liftbench.run.executors.slurm")["same"]


@pytest.mark.parametrize(
    ("package", "name", "home"),
    [("liftbench.backbones", "create_timm_backbone", "liftbench.backbones.timm_backbones"),
     ("liftbench.study", "Study", "liftbench.study.model"),
     ("liftbench.protocols", "RunContext", "liftbench.run.context")],
)  # fmt: skip
def test_old_modules_that_became_packages_forward_their_names(package, name, home):
    import importlib

    with pytest.warns(DeprecationWarning, match=f"{package}.{name} moved to {home}.{name}"):
        got = getattr(importlib.import_module(package), name)
    assert got is getattr(importlib.import_module(home), name)
    with pytest.raises(AttributeError):
        importlib.import_module(package).no_such_name  # noqa: B018


def test_the_package_root_is_the_stable_surface():
    import importlib

    for name, module in liftbench.SURFACE.items():
        assert getattr(liftbench, name) is getattr(importlib.import_module(module), name)
    wanted = {"VolumeDataset", "VolumeSplit", "Lifted", "Features", "check_options", "ProtocolResult", "RunContext",
              "Option", "classification_metrics", "UsageError", "PluginError", "CannotLiftError", "MissingFileError"}  # fmt: skip
    assert wanted <= set(liftbench.__all__) and callable(liftbench.hookimpl) and callable(liftbench.lift)


OLD_STYLE_PLUGIN = '''
"""A plugin as the 0.1 docs wrote it: every import from a module path that has since moved."""
import numpy as np
import torch

from liftbench import hookimpl
from liftbench.data import VolumeDataset, VolumeSplit
from liftbench.lifting.base import Lifted, check_options
from liftbench.lifting.features import Features
from liftbench.metrics import classification_metrics
from liftbench.protocols.context import ProtocolResult, RunContext
from liftbench.errors import CannotLiftError, UsageError
from liftbench.options import Option


def load(size=32, data_root=None):
    rng = np.random.default_rng(0)
    splits = {}
    for k, name in enumerate(("train", "val", "test")):
        labels = np.arange(8) % 2
        volumes = (rng.uniform(0, 80, (8, 1, size, size, size)) + 150 * labels[:, None, None, None, None]).astype(np.uint8)
        splits[name] = VolumeSplit(volumes=volumes, labels=labels)
    return VolumeDataset(name="old-bright", size=size, task="binary-class", num_classes=2, splits=splits)


def run(ctx: RunContext) -> ProtocolResult:
    dataset = ctx.dataset()
    train, test = ctx.features("train"), ctx.features("test")
    train, test = (f.mean(1) if f.dim() == 3 else f for f in (train, test))
    labels = torch.as_tensor(dataset.splits["train"].labels)
    centroids = torch.stack([train[labels == k].mean(0) for k in range(2)])
    probs = (-torch.cdist(test, centroids) / ctx.options["temperature"]).softmax(1).numpy()
    metrics = classification_metrics(probs, dataset.splits["test"].labels, dataset.task)
    return ProtocolResult(metrics=[("test", m, v) for m, v in metrics.items()])


@hookimpl
def liftbench_register_datasets(registrar):
    registrar.add("old-bright", "old_style_plugin:load", description="bright or dark noise", sizes=(32,))


@hookimpl
def liftbench_register_protocols(registrar):
    registrar.add("old-centroid", "old_style_plugin:run", description="nearest centroid",
                  options={"temperature": Option(float, 1.0, "softmax temperature", min=0, min_open=True)})
'''


def test_a_plugin_written_against_the_old_paths_still_runs(tmp_path, monkeypatch):
    (tmp_path / "old_style_plugin.py").write_text(textwrap.dedent(OLD_STYLE_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import old_style_plugin
    moved = {str(w.message).split(" moved")[0] for w in caught if issubclass(w.category, DeprecationWarning)}
    assert moved == {"liftbench.data", "liftbench.protocols.context", "liftbench.options"}  # the rest never moved
    rows = run_grid(registry_with(old_style_plugin), tmp_path / "run", datasets="old-bright", protocols="old-centroid",
                    strategies="2d,pcg", dataset_options={})  # fmt: skip
    assert set(rows["status"]) == {"ok"}
    auc = rows[rows["metric"] == "auc"]["value"]
    assert len(auc) == 2 and (auc > 0.9).all()  # bright vs dark: the features tell them apart
