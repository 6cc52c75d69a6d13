"""ConvNeXt through every CNN strategy, against references written here from the definitions.

Two timm ConvNeXts, on weights where every block matters (``conftest.py``: timm's LayerScale starts at 1e-6):
the channels-last form DINOv3's ConvNeXts use (``convnext_tiny`` at a custom tiny depth and width) and the
conv-MLP form (``convnext_atto``: ``LayerNorm2d`` and 1×1 convs). References:

* 3D: the network rebuilt from ``nn.Conv3d`` modules whose k×k×k kernels are filled here by hand (the 2D
  kernel repeated along depth, divided by k), and LayerNorm/MLP written with ``torch.nn.functional``;
* ACS: the same rebuild with the ``acsconv`` package's ``ACSConv`` (``groups`` for the depthwise convs);
* PlaneCycle: the unlifted 2D modules called once per slice — stem and downsamplers per axial slice, block i
  per slice of its plane — and stacked back.

Every comparison has mutation partners (``tests/helpers/mutations.py``) that must miss by >= 100 tolerances.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from acsconv.operators import ACSConv
from lifted_runs import run_lifted
from mutations import assert_caught, assert_close_to, mutated
from torch import nn

import liftbench
from liftbench.lifting.cnn_planecycle import find_blocks
from liftbench.lifting.planes import parse_schedule

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Channels-last ConvNeXt (the DINOv3 form), 5 blocks; widths 16..64 give every ACS split remainder (1, 2, 0, 1).
CHANNELS_LAST = {"pretrained": False, "depths": (1, 1, 2, 1), "dims": (16, 32, 48, 64)}
# Tolerance on scaled_error (tests/helpers/mutations.py), set from measured fp32 noise: the library in fp32 against the same
# reference run in float64 (model.double()), both models, volume seeds 0-1, VOLUME for 3D/ACS and PC_VOLUME for
# PlaneCycle on PC_SCHEDULES: largest 1.34e-6 (ACS, conv-MLP model; 3D 1.24e-6, PlaneCycle 1.06e-6). Tolerance:
# about 7x the largest. The mutations below miss by 0.34 or more (> 3e4 tolerances).
TOL = 1e-5
VOLUME = (2, 1, 32, 32, 64)  # after the stem (8, 8, 16); the last stage sees (1, 1, 2)
PC_VOLUME = (2, 1, 6, 40, 64)  # after the stem (D, H, W) = (6, 10, 16); the last stage sees (6, 1, 2)


@pytest.fixture(scope="module")
def convnext_cl(nontrivial_timm):
    return nontrivial_timm("convnext_tiny", **CHANNELS_LAST)


@pytest.fixture(scope="module")
def convnext_conv_mlp(nontrivial_timm):
    return nontrivial_timm("convnext_atto", pretrained=False)


MODELS = ["convnext_cl", "convnext_conv_mlp"]


def _volume(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))




# ------------------------------------------------------------------------------- independent references


def hand_inflated(conv: nn.Conv2d) -> nn.Module:
    """An ``nn.Conv3d`` holding the I3D inflation of ``conv``, filled element by element along depth."""
    k = conv.kernel_size[0]
    out = nn.Conv3d(conv.in_channels, conv.out_channels, k, conv.stride[0], conv.padding[0], conv.dilation[0],
                    conv.groups, bias=conv.bias is not None).to(conv.weight.dtype)  # fmt: skip
    with torch.no_grad():
        for z in range(k):
            out.weight[:, :, z] = conv.weight / k
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
    return out


def acs_oracle(conv: nn.Conv2d) -> nn.Module:
    """The ``acsconv`` package's ACS operator with ``conv``'s weights."""
    out = ACSConv(conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0], conv.padding[0],
                            conv.dilation[0], conv.groups, bias=conv.bias is not None).to(conv.weight.dtype)  # fmt: skip
    with torch.no_grad():
        out.weight.copy_(conv.weight)
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
    return out


def _norm_channels(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the channels of every voxel of ``(B, C, D, H, W)``."""
    y = F.layer_norm(x.permute(0, 2, 3, 4, 1), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
    return y.permute(0, 4, 1, 2, 3)


def ref_convnext_volume(model, volume, make_conv):
    """A timm ConvNeXt's trunk rebuilt for volumes, every Conv2d replaced by ``make_conv(conv2d)``."""
    assert isinstance(model.norm_pre, nn.Identity)
    x = volume.expand(-1, 3, -1, -1, -1)
    stem_conv, stem_norm = model.stem
    x = _norm_channels(stem_norm, make_conv(stem_conv)(x))
    for stage in model.stages:
        if not isinstance(stage.downsample, nn.Identity):
            norm, conv = stage.downsample
            x = make_conv(conv)(_norm_channels(norm, x))
        for block in stage.blocks:
            y = make_conv(block.conv_dw)(x)
            fc1, fc2 = block.mlp.fc1, block.mlp.fc2
            if block.use_conv_mlp:
                y = make_conv(fc2)(F.gelu(make_conv(fc1)(_norm_channels(block.norm, y))))
            else:
                y = y.permute(0, 2, 3, 4, 1)  # (B, D, H, W, C)
                y = F.layer_norm(y, block.norm.normalized_shape, block.norm.weight, block.norm.bias, block.norm.eps)
                y = F.linear(F.gelu(F.linear(y, fc1.weight, fc1.bias)), fc2.weight, fc2.bias).permute(0, 4, 1, 2, 3)
            x = x + y * block.gamma.view(1, -1, 1, 1, 1)
    return x.mean(dim=(2, 3, 4)), x


def ref_planecycle_convnext(model, volume, schedule):
    """PlaneCycle for a ConvNeXt: the stem and each stage's downsampler on every axial slice; block i called
    once per slice of plane schedule[i mod len] (HW: each depth index, DW: each row, DH: each column)."""
    images = volume.expand(-1, 3, -1, -1, -1)
    x = torch.stack([model.stem(images[:, :, d]) for d in range(images.shape[2])], dim=2)
    index = 0
    for stage in model.stages:
        x = torch.stack([stage.downsample(x[:, :, d]) for d in range(x.shape[2])], dim=2)
        for block in stage.blocks:
            axis = {"HW": 2, "DW": 3, "DH": 4}[schedule[index % len(schedule)]]
            x = torch.stack([block(x.select(axis, s)) for s in range(x.shape[axis])], dim=axis)
            index += 1
    return x.mean(dim=(3, 4)).transpose(1, 2), x


# -------------------------------------------------------------------------------------------- the weights


@pytest.mark.parametrize("name", MODELS)
@torch.no_grad()
def test_every_convnext_block_matters(request, name):
    """Each block moves its input by >= 10% (timm's LayerScale of 1e-6: by about 1e-6)."""
    model = request.getfixturevalue(name)
    x = model.stem(_volume((2, 3, 32, 32), 3))
    for stage in model.stages:
        x = stage.downsample(x)
        for block in stage.blocks:
            out = block(x)
            assert float((out - x).norm() / out.norm()) > 0.1
            x = out


# ---------------------------------------------------------------------------------------- 3D and ACS


REFERENCES = {"3d": hand_inflated, "acs": acs_oracle}


@pytest.mark.parametrize("strategy", ["3d", "acs"])
@pytest.mark.parametrize("name", MODELS)
def test_volume_strategies_match_the_reference(request, name, strategy):
    model, volume = request.getfixturevalue(name), _volume(VOLUME, 0)
    with torch.no_grad():
        expected = ref_convnext_volume(model, volume, REFERENCES[strategy])
    got = run_lifted(model, volume, strategy)
    assert got[1].shape == expected[1].shape == (2, model.num_features, 1, 1, 2)
    assert_close_to(got, expected, TOL)


VOLUME_MUTANTS = [
    *[(name, "3d", m) for name in MODELS for m in ("i3d.kernel-not-divided", "convnext.layer-scale-dropped")],
    *[
        (name, "acs", m)
        for name in MODELS
        for m in ("acs.remainder-to-last-groups", "acs.kernels-transposed", "convnext.layer-scale-dropped")
    ],
]


@pytest.mark.parametrize("name, strategy, mutation", VOLUME_MUTANTS)
def test_volume_reference_catches(request, monkeypatch, name, strategy, mutation):
    model, volume = request.getfixturevalue(name), _volume(VOLUME, 0)
    with torch.no_grad():
        expected = ref_convnext_volume(model, volume, REFERENCES[strategy])
    with monkeypatch.context() as mp:
        mutated(mp, mutation)
        wrong = run_lifted(model, volume, strategy)
    assert_caught(wrong, expected, TOL, request)


# ---------------------------------------------------------------------------------------------- PlaneCycle

PC_SCHEDULES = ["DW", "DH", "HW,DW,DH,HW"]


@pytest.mark.parametrize("schedule", PC_SCHEDULES)
@pytest.mark.parametrize("name", MODELS)
def test_planecycle_matches_the_per_slice_reference(request, name, schedule):
    model, volume = request.getfixturevalue(name), _volume(PC_VOLUME, 1)
    with torch.no_grad():
        expected = ref_planecycle_convnext(model, volume, parse_schedule(schedule))
    assert_close_to(run_lifted(model, volume, "pcg", schedule=schedule), expected, TOL)


PC_MUTANTS = [
    (name, schedule, mutation)
    for name in MODELS
    for schedule in PC_SCHEDULES
    for mutation in ("cnn.all-blocks-HW", "cnn.DW-DH-swapped", "cnn.block1-next-plane")
]


@pytest.mark.parametrize("name, schedule, mutation", PC_MUTANTS)
def test_planecycle_reference_catches(request, monkeypatch, name, schedule, mutation):
    model, volume = request.getfixturevalue(name), _volume(PC_VOLUME, 1)
    with torch.no_grad():
        expected = ref_planecycle_convnext(model, volume, parse_schedule(schedule))
    with monkeypatch.context() as mp:
        mutated(mp, mutation)  # before lifting: blocks are put on their planes at lift time
        wrong = run_lifted(model, volume, "pcg", schedule=schedule)
    assert_caught(wrong, expected, TOL, request)


def test_planecycle_stem_downsamplers_and_norms_see_axial_slices(convnext_conv_mlp):
    """Stem and downsampler (with their LayerNorm2d) always on axial slices; block i on its plane."""
    model = convnext_conv_mlp
    blocks = find_blocks(model)
    assert len(blocks) == sum(len(stage.blocks) for stage in model.stages) == 12
    seen = {}

    def recorder(key):
        def hook(module, args):
            seen.setdefault(key, tuple(args[0].shape))

        return hook

    watched = {"stem.conv": model.stem[0], "stem.norm": model.stem[1], "down1.norm": model.stages[1].downsample[0],
               "down1.conv": model.stages[1].downsample[1], "block0": blocks[0].conv_dw, "block1": blocks[1].conv_dw,
               "block1.norm": blocks[1].norm, "block2": blocks[2].conv_dw}  # fmt: skip
    hooks = [module.register_forward_pre_hook(recorder(key)) for key, module in watched.items()]
    try:
        run_lifted(model, torch.randn(2, 1, 4, 32, 40), "pcg", schedule="HW,DW,DH,HW")  # stem: (4, 8, 10)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen["stem.conv"] == (2 * 4, 3, 32, 40)
    assert seen["stem.norm"] == (2 * 4, 40, 8, 10)
    assert seen["block0"] == (2 * 4, 40, 8, 10)  # HW: (B·D, C, H, W)
    assert seen["block1"] == seen["block1.norm"] == (2 * 8, 40, 4, 10)  # DW: (B·H, C, D, W)
    assert seen["down1.norm"] == (2 * 4, 40, 8, 10)  # between stages: axial slices again
    assert seen["down1.conv"] == (2 * 4, 40, 8, 10)
    assert seen["block2"] == (2 * 5, 80, 4, 4)  # DH after the downsampler: (B·W, C, D, H)


@pytest.mark.parametrize("name", MODELS)
def test_every_strategy_runs_and_unlifts(request, name):
    model = request.getfixturevalue(name)
    image = _volume((1, 3, 32, 32), 5)
    with torch.no_grad():
        before = model(image)
    for strategy in ("2d", "3d", "acs", "pcm", "pcg"):
        pooled, patches = run_lifted(model, _volume((1, 1, 32, 32, 32), 4), strategy)
        assert patches.shape[:2] == (1, model.num_features) and torch.isfinite(pooled).all()
    with torch.no_grad():
        assert torch.equal(model(image), before)


@pytest.mark.parametrize("strategy", ["2d", "3d", "acs", "pcg"])
def test_gradients_reach_every_trunk_weight(nontrivial_timm, strategy):
    """Fine-tuning a lifted ConvNeXt trains its 2D parameters: the depthwise kernels, norms, MLPs and gammas."""
    model = nontrivial_timm("convnext_tiny", **CHANNELS_LAST)
    lifted = liftbench.lift(model, strategy)
    try:
        lifted(_volume((1, 1, 32, 32, 32), 6)).pooled.square().mean().backward()
    finally:
        lifted.unlift()
    for name, param in model.named_parameters():
        if not name.startswith("head."):
            assert param.grad is not None and param.grad.abs().sum() > 0, name
