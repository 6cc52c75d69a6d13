"""``liftbench.lift`` is all or nothing: a lifting that fails leaves the 2D model exactly as it was.

Each CNN strategy is given a model it cannot lift — a layer it does not know deep in the trunk, after many
layers it could convert, or a failure planted in the middle of patching — and afterwards the state dict
(keys, shapes, values), the module tree and the instance ``forward`` overrides are what they were, and the 2D
model gives the same output on an image, bit for bit.
"""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import liftbench
from liftbench.errors import CannotLiftError
from liftbench.lifting import cnn_layers

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CNN_STRATEGIES = ("2d", "3d", "acs", "pcm", "pcg")
IMAGE = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))


class Roll(nn.Module):
    """A layer no lifting knows: it rolls the grid by one row, which only makes sense in 2D."""

    def forward(self, x):
        return x.roll(1, dims=-2)


class NoBlocks(nn.Module):
    """A CNN with a trunk but no residual blocks: PlaneCycle has nothing to put on planes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward_features(self, x):
        return self.conv(x)

    def forward(self, x):
        return self.forward_features(x).mean((2, 3))


def snapshot(model: nn.Module) -> dict:
    with torch.no_grad():
        out = model(IMAGE)
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "tree": [(name, id(m), type(m)) for name, m in model.named_modules()],
        "overrides": [name for name, m in model.named_modules() if "forward" in m.__dict__],
        "output": out,
    }


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert list(after["state"]) == list(before["state"])
    for key, value in before["state"].items():
        assert after["state"][key].shape == value.shape and torch.equal(after["state"][key], value), key
    assert after["tree"] == before["tree"]
    assert after["overrides"] == before["overrides"] == []
    assert torch.equal(after["output"], before["output"])


def resnet_with_unknown_layer() -> nn.Module:
    """resnet18 whose ``layer3.0.act1`` is :class:`Roll`: the stem, layer1, layer2 (convertible) come first."""
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False).eval()
    model.layer3[0].act1 = Roll()
    return model


def unliftable(strategy: str) -> tuple[nn.Module, str]:
    """A model ``strategy`` refuses, and the refusal's message pattern."""
    if strategy in ("3d", "acs"):
        return resnet_with_unknown_layer(), r"layer3\.0\.act1.*Roll"
    if strategy in ("pcm", "pcg"):
        return NoBlocks(), "no residual blocks"
    return nn.Sequential(nn.Conv2d(3, 4, 3)), "trunk"


@pytest.mark.parametrize("strategy", CNN_STRATEGIES)
def test_a_refused_lifting_leaves_the_model_as_it_was(strategy):
    model, message = unliftable(strategy)
    before = snapshot(model)
    with pytest.raises(CannotLiftError, match=message):
        liftbench.lift(model, strategy)
    assert_unchanged(model, before)


class Planted(RuntimeError):
    pass


@pytest.mark.parametrize("strategy", ["3d", "acs", "pcg"])
def test_a_failure_in_the_middle_of_patching_is_rolled_back(monkeypatch, strategy):
    """Any exception while patching (here: the 4th patch fails) undoes the patches already made."""
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False).eval()
    before = snapshot(model)
    original = cnn_layers.Patcher.patch
    calls = []

    def failing(self, module, fn, *args):
        calls.append(module)
        if len(calls) == 4:
            raise Planted("planted")
        return original(self, module, fn, *args)

    with monkeypatch.context() as mp:
        mp.setattr(cnn_layers.Patcher, "patch", failing)
        with pytest.raises(Planted):
            liftbench.lift(model, strategy, **({"schedule": "DW"} if strategy == "pcg" else {}))
    assert len(calls) == 4  # three layers had been patched when it failed
    assert_unchanged(model, before)
    lifted = liftbench.lift(model, strategy)  # and it lifts cleanly afterwards
    with torch.no_grad():
        assert torch.isfinite(lifted(torch.randn(1, 1, 8, 32, 32)).pooled).all()
    lifted.unlift()
    assert_unchanged(model, before)


def test_the_refusal_names_the_first_unknown_layer_and_the_head_is_never_checked():
    """The classifier (a Linear) is not in the trunk: it neither refuses nor gets patched."""
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False).eval()
    lifted = liftbench.lift(model, "3d")
    try:
        assert "forward" not in model.fc.__dict__ and "forward" not in model.global_pool.__dict__
        assert "forward" in model.conv1.__dict__
    finally:
        lifted.unlift()
