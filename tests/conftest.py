"""Shared fixtures: small timm backbones on weights where every block changes what it is given.

Why not timm's random init as is: it makes blocks near-identities. DINOv3's LayerScale starts at 1e-5, so a
block moves its tokens by ~1e-5 — below a 1e-4 tolerance, and a lifting that ran every block on the wrong
plane passed every exactness test. timm ResNets zero-init the last BatchNorm of every residual branch, so
every branch adds exactly nothing and "PlaneCycle on plane X" equals "slice-2D" by construction. The
randomisers below draw, from a seeded generator:

* ViTs: LayerScale gammas uniform in [0.5, 1.5]; LayerNorm weights uniform in [0.5, 1.5] and biases in
  [-0.1, 0.1]; qkv weights normal with std 0.05 (timm draws 0.02: attention logits of ~0.05, so attention is
  near uniform and token positions — RoPE — barely matter; at 0.05 the logits are of order one).
* CNNs: every BatchNorm's weight uniform in [0.5, 1.5], bias in [-0.1, 0.1], running mean in [-0.1, 0.1],
  running variance in [0.5, 2].
* ConvNeXts: LayerScale gammas (timm: 1e-6) uniform in [0.5, 1.5], LayerNorm weights and biases as for ViTs,
  and every conv and linear weight normal with std 1/sqrt(fan-in) (timm draws std 0.02: even with gammas of
  one, a block then moves its input by 1-10%; at 1/sqrt(fan-in) by 35-60%).

Models are built inside ``torch.random.fork_rng`` so a fixture gives the same weights whatever ran before it.
``test_every_vit_block_matters`` and ``test_every_residual_branch_matters`` check the effect of the draws.
"""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

VIT_GAMMA = (0.5, 1.5)
NORM_WEIGHT = (0.5, 1.5)
NORM_BIAS = (-0.1, 0.1)
QKV_STD = 0.05
BN_RUNNING_MEAN = (-0.1, 0.1)
BN_RUNNING_VAR = (0.5, 2.0)

# The tiny DINOv3 every ViT exactness test runs on: 4 blocks, E = 128, 2 heads of head_dim 64 (as ViT-S/B/L).
DINOV3_KW = {"pretrained": False, "global_pool": "token", "depth": 4, "embed_dim": 128, "num_heads": 2}


def _uniform_(tensor: torch.Tensor, bounds: tuple[float, float], generator: torch.Generator) -> None:
    low, high = bounds
    tensor.copy_(torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype) * (high - low) + low)


@torch.no_grad()
def randomize_vit_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give a timm ViT LayerScale, LayerNorm and qkv weights under which every block matters (in place)."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        # Eva (DINOv3, EVA-02): blocks.i.gamma_1 / gamma_2; VisionTransformer (DINOv2): blocks.i.ls1.gamma
        if name.rsplit(".", 1)[-1] in ("gamma", "gamma_1", "gamma_2"):
            _uniform_(param, VIT_GAMMA, generator)
    for module in model.modules():
        if isinstance(module, nn.LayerNorm) and module.elementwise_affine:
            _uniform_(module.weight, NORM_WEIGHT, generator)
            if module.bias is not None:
                _uniform_(module.bias, NORM_BIAS, generator)
    for block in getattr(model, "blocks", ()):
        qkv = getattr(getattr(block, "attn", None), "qkv", None)
        if isinstance(qkv, nn.Linear):
            qkv.weight.copy_(torch.randn(qkv.weight.shape, generator=generator) * QKV_STD)
    return model


@torch.no_grad()
def randomize_cnn_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm of a CNN non-trivial affine parameters and running statistics (in place)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):  # timm's BatchNormAct2d included
            _uniform_(module.weight, NORM_WEIGHT, generator)
            _uniform_(module.bias, NORM_BIAS, generator)
            _uniform_(module.running_mean, BN_RUNNING_MEAN, generator)
            _uniform_(module.running_var, BN_RUNNING_VAR, generator)
    return model


@torch.no_grad()
def randomize_convnext_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give a timm ConvNeXt layer scales, LayerNorms and conv/linear weights under which every block matters."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        if name.endswith(".gamma"):
            _uniform_(param, VIT_GAMMA, generator)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / fan_in**0.5)
        elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:  # LayerNorm2d included
            _uniform_(module.weight, NORM_WEIGHT, generator)
            _uniform_(module.bias, NORM_BIAS, generator)
    return model


def nontrivial(model: nn.Module, seed: int = 0) -> nn.Module:
    """The randomiser for the model's family (ViT: has ``blocks`` and ``patch_embed``), in eval mode."""
    if hasattr(model, "patch_embed") and hasattr(model, "blocks"):
        return randomize_vit_(model, seed).eval()
    if type(model).__name__ == "ConvNeXt":
        return randomize_convnext_(model, seed).eval()
    return randomize_cnn_(model, seed).eval()


def create(name: str, seed: int = 0, **kwargs) -> nn.Module:
    """``timm.create_model(name, **kwargs)`` with seeded init, then :func:`nontrivial` weights, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(name, **kwargs)
    return nontrivial(model, seed)


def is_unpatched(model: nn.Module) -> bool:
    """No layer of ``model`` carries a lifting's instance-level ``forward`` override."""
    return not any("forward" in module.__dict__ for module in model.modules())


@pytest.fixture(scope="session")
def dinov3() -> nn.Module:
    """Tiny random DINOv3 (timm ``vit_small_patch16_dinov3``: 4 blocks, E = 128, head_dim 64), every block mattering."""
    return create("vit_small_patch16_dinov3", **DINOV3_KW)


def _cnn_fixture(name: str):
    model = create(name, pretrained=False)
    yield model
    assert is_unpatched(model), f"a test left {name} lifted (patched); unlift() it in a finally block"


@pytest.fixture(scope="module")
def resnet_bottleneck():
    """timm ``resnet26``: 8 Bottleneck blocks (2, 2, 2, 2), strided blocks 2, 4, 6; non-trivial BatchNorms."""
    yield from _cnn_fixture("resnet26")


@pytest.fixture(scope="module")
def resnet_basic():
    """timm ``resnet18``: 8 BasicBlocks (2, 2, 2, 2), strided blocks 2, 4, 6; non-trivial BatchNorms."""
    yield from _cnn_fixture("resnet18")


@pytest.fixture(scope="module")
def resnet50():
    """timm ``resnet50`` (16 Bottleneck blocks, the project's CNN), non-trivial BatchNorms."""
    yield from _cnn_fixture("resnet50")


@pytest.fixture(scope="session")
def nontrivial_timm():
    """``create(name, seed=0, **timm_kwargs)``: a timm model on non-trivial weights, for tests that need another one."""
    return create


@pytest.fixture(scope="session")
def nontrivial_weights():
    """``nontrivial(model, seed=0)``: give a model built elsewhere (torchvision, ...) non-trivial weights."""
    return nontrivial


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one intra-op thread (restored after). Most of the lifting tests are many small
    ops — per-slice reference loops, tiny models — where a second thread buys nothing, and on a shared
    machine OpenMP threads that spin-wait for a busy core made the ViT + CNN lifting files take minutes
    instead of seconds. Use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    from liftbench.protocols.linear import one_thread

    with one_thread():
        yield


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test's feature cache is its own (``$LIFTBENCH_CACHE`` under its tmp_path): no test reads another's
    features, and none writes into the user's ~/.cache."""
    monkeypatch.setenv("LIFTBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def registry():
    """The installed plugins plus liftbench.testing's tiny backbones (``tiny-vit``, ``tiny-cnn``)."""
    from liftbench.testing import registry_with

    return registry_with()
