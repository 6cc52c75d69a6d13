"""scripts/support_matrix.py on a representative subset: a family that lifts everywhere, one that the volume
strategies refuse (squeeze-excite) and one every CNN strategy refuses (Swin: channels-last features)."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from repo_root import ROOT
from torch import nn

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCRIPT = ROOT / "scripts" / "support_matrix.py"


@pytest.fixture(scope="module")
def support():
    spec = importlib.util.spec_from_file_location("support_matrix", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_subset_of_families(support):
    families = {f: support.FAMILIES[f] for f in ("ResNet", "MobileNetV3", "Swin")}
    results, kinds = support.matrix(families)
    status = {f: {s: o.status for s, o in results[f].items()} for f in results}
    assert status["ResNet"] == dict.fromkeys(support.STRATEGIES, "lifts")
    assert status["MobileNetV3"] == {"2d": "lifts", "3d": "refuses", "acs": "refuses", "pcm": "lifts", "pcg": "lifts"}
    assert "SqueezeExcite" in results["MobileNetV3"]["3d"].detail
    assert status["Swin"] == dict.fromkeys(support.STRATEGIES, "refuses")  # NHWC features: refused, not misread
    assert kinds == {"ResNet": "cnn", "MobileNetV3": "cnn", "Swin": "cnn"}
    page = support.render(results, families, kinds)
    assert "| 3d         |       1 |         2 |       0 |" in page  # counts per strategy: lifts, refuses, fails


def test_a_lifting_that_changes_the_model_is_a_failure_not_a_refusal(support, monkeypatch):
    """The classifier itself can fail: a lifter that patches a layer and then refuses is reported as ``fails``."""
    from liftbench import api
    from liftbench.errors import CannotLiftError

    model = support.build("resnet18", {})
    volume = torch.randn(*support.VOLUME)

    def leaky(registry, model, strategy, **options):
        model.fc = nn.Identity()
        raise CannotLiftError("refused after changing the head")

    monkeypatch.setattr(api, "lift_with", leaky)
    outcome = support.check(model, "3d", volume)
    assert outcome.status == "fails" and "left the model changed" in outcome.detail
