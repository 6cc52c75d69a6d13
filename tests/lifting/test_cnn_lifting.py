"""CNN liftings: slice-2D, inflated 3D, ACS and PlaneCycle (the definition in docs/strategies.md).

Exactness tests run on ResNets whose every residual branch matters (``conftest.py``: timm zero-inits the last
BatchNorm of each branch, which made every branch add nothing). PlaneCycle is compared with a reference written
here from the definition — each residual block called once per slice of its plane — and every comparison has
mutation partners (``tests/helpers/mutations.py``) that plant a bug in the library and must miss by >= 100 tolerances.
"""

from __future__ import annotations

import functools

import pytest
import timm
import torch
import torch.nn.functional as F
from lifted_runs import run_lifted
from mutations import assert_caught, assert_close_to, mutated
from torch import nn

import liftbench
from liftbench.errors import CannotLiftError, UsageError
from liftbench.lifting.cnn_acs import ACSCNN, acs_conv3d, acs_split
from liftbench.lifting.cnn_inflate import Inflated3DCNN, inflated_conv
from liftbench.lifting.cnn_planecycle import PlaneCycleCNN, find_blocks, from_plane, to_plane
from liftbench.lifting.cnn_slice2d import Slice2DCNN
from liftbench.lifting.cnn_volume import batch_norm_5d, conv_geometry
from liftbench.lifting.planes import parse_schedule

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STRATEGIES = ("2d", "3d", "acs", "pcm", "pcg")
VOLUME = (1, 1, 16, 32, 32)
# PlaneCycle comparisons: after the stem (H, W / 4) the map is (D, H, W) = (12, 8, 6), all different.
PC_VOLUME = (2, 1, 12, 32, 24)

# Tolerances, on scaled_error = max|got - expected| / max|expected| (tests/helpers/mutations.py), set from measured fp32
# noise: the library in fp32 against the same reference run in float64 (model.double()) — resnet18 and resnet26
# with weight seeds 0-2 and volume seeds 0-2 over PC_SCHEDULES and HW, resnet50 on its default schedule:
# largest 1.07e-6 (median 6.7e-7); the per-slice 2D loop: 9.0e-7. Tolerance: about 10x the largest. (On this CPU
# the fp32 library and the fp32 loop reference agree bit for bit.)
TOL = 1e-5
# Single operators in fp32 vs float64: ACS 5.6e-7 (ACS_CASES), centred cubes 4.2e-7, inflated convs 1.6e-6 (CONVS),
# BatchNorm 5D 1.5e-7; the fp32 acsconv oracle agrees with acs_conv3d bit for bit. Tolerance: about 10x.
TOL_OP = 2e-5


@pytest.fixture(scope="module")
def volume():
    return torch.randn(*VOLUME, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def pc_volume():
    return torch.randn(*PC_VOLUME, generator=torch.Generator().manual_seed(2))


def _unpatched(model: nn.Module) -> bool:
    return not any("forward" in m.__dict__ for m in model.modules())




# ------------------------------------------------------------------- independent references (from the definition)


def ref_stem(model, image):
    return model.maxpool(model.act1(model.bn1(model.conv1(image))))


def ref_residual_blocks(model):
    return [block for name in ("layer1", "layer2", "layer3", "layer4") for block in getattr(model, name)]


def ref_per_slice_2d(model, volume):
    """The plain 2D model (timm's forward_features) on each axial slice, one slice at a time: (B, F, D, h, w)."""
    images = volume.expand(-1, 3, -1, -1, -1)
    return torch.stack([model.forward_features(images[:, :, d]) for d in range(images.shape[2])], dim=2)


def ref_planecycle_cnn(model, volume, schedule):
    """PlaneCycle for a ResNet as the definition and the library's documented choices state it.

    The stem runs on every axial slice. Residual block i runs on plane schedule[i mod len]: it is called once
    per slice of that plane — HW: each depth index d, the image (H, W); DW: each row y, the image (D, W); DH:
    each column x, the image (D, H) — and its outputs are stacked back along the slice axis. So a strided block
    shrinks only its plane's two axes. Features: the last map (B, F, d, h, w), its mean over (h, w) per depth.
    Must run on the *unlifted* model: a lifted block would re-route the call.
    """
    images = volume.expand(-1, 3, -1, -1, -1)
    x = torch.stack([ref_stem(model, images[:, :, d]) for d in range(images.shape[2])], dim=2)  # (B, C, D, H, W)
    for i, block in enumerate(ref_residual_blocks(model)):
        axis = {"HW": 2, "DW": 3, "DH": 4}[schedule[i % len(schedule)]]
        x = torch.stack([block(x.select(axis, s)) for s in range(x.shape[axis])], dim=axis)
    return x.mean(dim=(3, 4)).transpose(1, 2), x


# ------------------------------------------------------------------------ the weights make every branch matter


@pytest.mark.parametrize("name", ["resnet_basic", "resnet_bottleneck", "resnet50"])
@torch.no_grad()
def test_every_residual_branch_matters(request, name):
    """Each block's output differs from what its shortcut alone gives by >= 10% (timm's init: exactly 0)."""
    model = request.getfixturevalue(name)
    x = ref_stem(model, torch.randn(2, 3, 32, 24, generator=torch.Generator().manual_seed(3)))
    for block in ref_residual_blocks(model):
        shortcut = block.downsample(x) if block.downsample is not None else x
        out = block(x)
        assert float((out - F.relu(shortcut)).norm() / out.norm()) > 0.1
        x = out


# ---------------------------------------------------------------------------------------- ResNet-50


@pytest.mark.parametrize(
    "strategy, cls, pooled, patches",
    [
        ("2d", Slice2DCNN, (1, 16, 2048), (1, 2048, 16, 1, 1)),
        ("3d", Inflated3DCNN, (1, 2048), (1, 2048, 1, 1, 1)),
        ("acs", ACSCNN, (1, 2048), (1, 2048, 1, 1, 1)),
        # default schedule: strided blocks 3 (HW), 7 (HW), 13 (DW): depth halves once, W once more than H
        ("pcm", PlaneCycleCNN, (1, 8, 2048), (1, 2048, 8, 2, 1)),
        ("pcg", PlaneCycleCNN, (1, 8, 2048), (1, 2048, 8, 2, 1)),
    ],
)
def test_resnet50_shapes_params_and_unlift(resnet50, volume, strategy, cls, pooled, patches):
    params = {name: p for name, p in resnet50.named_parameters()}
    modules = dict(resnet50.named_modules())
    image = volume[:, :, 0].expand(-1, 3, -1, -1)
    with torch.no_grad():
        before = resnet50(image)
    lifted = liftbench.lift(resnet50, strategy)
    try:
        assert isinstance(lifted, cls) and lifted.model is resnet50
        assert lifted.describe()["strategy"] == strategy
        assert sum(p.numel() for p in lifted.parameters()) == sum(p.numel() for p in params.values())
        assert all(a is b for a, b in zip(lifted.model.parameters(), params.values(), strict=True))
        with torch.no_grad():
            features = lifted(volume)
        assert tuple(features.pooled.shape) == pooled and tuple(features.patches.shape) == patches
        assert torch.isfinite(features.pooled).all()
        assert features.per_slice == (strategy in ("2d", "pcm", "pcg"))
    finally:
        model = lifted.unlift()
    assert model is resnet50 and _unpatched(model)
    assert dict(model.named_modules()) == modules
    assert all(a is b for a, b in zip(model.parameters(), params.values(), strict=True))
    with torch.no_grad():
        assert torch.equal(model(image), before)


@pytest.mark.parametrize("strategy", ["2d", "3d", "acs", "pcg"])
def test_gradients_reach_the_2d_weights(nontrivial_timm, strategy):
    model = nontrivial_timm("resnet18", pretrained=False)  # timm's zero-init last BN would block the branch's grads
    lifted = liftbench.lift(model, strategy)
    lifted(torch.randn(2, 1, 8, 32, 32, generator=torch.Generator().manual_seed(0))).pooled.square().mean().backward()
    for name, param in model.named_parameters():
        if not name.startswith("fc."):
            assert param.grad is not None and param.grad.abs().sum() > 0, name
    lifted.unlift()


# ---------------------------------------------------------------------------------------------- PlaneCycle


def test_planecycle_hw_only_equals_slice2d_bit_for_bit(resnet50):
    volumes = torch.randn(2, 1, 6, 32, 32, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(a, b) for a, b in zip(run_lifted(resnet50, volumes, "2d"), run_lifted(resnet50, volumes, "pcg", schedule="HW"), strict=True))


CNN_MODELS = ["resnet_basic", "resnet_bottleneck"]


@pytest.fixture(scope="module")
def pc_reference(request, pc_volume):
    """Memoised references on ``pc_volume``, computed on the unlifted fixture models: PlaneCycle for a
    schedule, or (schedule None) the plain 2D model on each axial slice."""

    @functools.cache
    def compute(name: str, schedule: str | None):
        model = request.getfixturevalue(name)
        with torch.no_grad():
            if schedule is None:
                return ref_per_slice_2d(model, pc_volume)
            return ref_planecycle_cnn(model, pc_volume, parse_schedule(schedule))

    return compute


@pytest.mark.parametrize("strategy", ["2d", "pcg"])
@pytest.mark.parametrize("name", CNN_MODELS)
def test_hw_is_the_2d_model_on_each_slice(request, pc_volume, pc_reference, name, strategy):
    """Slice-2D and PlaneCycle-HW against the plain 2D model called on one axial slice at a time."""
    options = {"schedule": "HW"} if strategy == "pcg" else {}
    got = run_lifted(request.getfixturevalue(name), pc_volume, strategy, **options)[1]
    assert_close_to(got, pc_reference(name, None), TOL)


@pytest.mark.parametrize(
    "strategy, mutation",
    [("pcg", "cnn.block1-next-plane"), ("pcg", "cnn.slices-transposed"), ("2d", "cnn.slices-transposed")],
)
def test_hw_per_slice_comparison_catches(resnet_bottleneck, pc_volume, pc_reference, monkeypatch, request, strategy, mutation):
    options = {"schedule": "HW"} if strategy == "pcg" else {}
    with monkeypatch.context() as mp:
        mutated(mp, mutation)
        wrong = run_lifted(resnet_bottleneck, pc_volume, strategy, **options)[1]
    assert_caught(wrong, pc_reference("resnet_bottleneck", None), TOL, request)


PC_SCHEDULES = ["DW", "DH", "HW,DW,DH,HW", "DH,HW,DW", "HW,DW,HW,DH"]


@pytest.mark.parametrize("schedule", PC_SCHEDULES)
@pytest.mark.parametrize("name", CNN_MODELS)
def test_planecycle_matches_reference(request, pc_volume, pc_reference, name, schedule):
    model = request.getfixturevalue(name)
    assert_close_to(run_lifted(model, pc_volume, "pcg", schedule=schedule), pc_reference(name, schedule), TOL)


def test_resnet50_planecycle_matches_reference(resnet50):
    """The project's CNN, 16 blocks, default schedule (strided blocks 3 and 7 on HW, 13 on DW)."""
    volume = torch.randn(1, 1, 6, 32, 40, generator=torch.Generator().manual_seed(6))  # (6, 8, 10) after the stem
    with torch.no_grad():
        expected = ref_planecycle_cnn(resnet50, volume, parse_schedule("HW,DW,DH,HW"))
    got = run_lifted(resnet50, volume, "pcg")
    assert got[1].shape == (1, 2048, 3, 2, 2)
    assert_close_to(got, expected, TOL)


PC_MUTANTS = [
    *[
        (name, "HW,DW,DH,HW", mutation)
        for name in CNN_MODELS
        for mutation in (
            "cnn.all-blocks-HW",
            "cnn.schedule-shifted-by-one",
            "cnn.DW-DH-swapped",
            "cnn.block1-next-plane",
        )
    ],
    *[("resnet_bottleneck", s, m) for s in ("DW", "DH") for m in ("cnn.all-blocks-HW", "cnn.DW-DH-swapped", "cnn.block1-next-plane")],
    *[("resnet_basic", "DH,HW,DW", m) for m in ("cnn.schedule-shifted-by-one", "cnn.DW-DH-swapped", "cnn.block1-next-plane")],
    # strided blocks 2, 4, 6 all on HW: these mutations keep every shape, so they are caught by value alone
    *[(name, "HW,DW,HW,DH", m) for name in CNN_MODELS for m in ("cnn.all-blocks-HW", "cnn.DW-DH-swapped")],
]


@pytest.mark.parametrize("name, schedule, mutation", PC_MUTANTS)
def test_planecycle_reference_catches(request, pc_volume, pc_reference, monkeypatch, name, schedule, mutation):
    """A block on the wrong plane misses the reference: by >= 100 tolerances, or in shape when it moves a stride."""
    model = request.getfixturevalue(name)
    expected = pc_reference(name, schedule)
    with monkeypatch.context() as mp:
        mutated(mp, mutation)  # before lifting: PlaneCycle-CNN puts blocks on their planes at lift time
        wrong = run_lifted(model, pc_volume, "pcg", schedule=schedule)
    assert_caught(wrong, expected, TOL, request)


def test_planecycle_blocks_see_their_planes(resnet50):
    blocks = find_blocks(resnet50)
    assert len(blocks) == 16
    seen = {}

    def recorder(index):
        def hook(module, args):
            seen.setdefault(index, tuple(args[0].shape))

        return hook

    hooks = [b.conv1.register_forward_pre_hook(recorder(i)) for i, b in enumerate(blocks[:4])]
    lifted = PlaneCycleCNN(resnet50, schedule="HW,DW,DH,HW")
    try:
        with torch.no_grad():
            lifted(torch.randn(2, 1, 4, 32, 24))  # after the stem: (D, H, W) = (4, 8, 6)
    finally:
        lifted.unlift()
        for h in hooks:
            h.remove()
    assert seen[0] == (2 * 4, 64, 8, 6)  # HW: (B·D, C, H, W)
    assert seen[1] == (2 * 8, 256, 4, 6)  # DW: (B·H, C, D, W)
    assert seen[2] == (2 * 6, 256, 4, 8)  # DH: (B·W, C, D, H)
    assert seen[3] == (2 * 4, 256, 8, 6)


def test_plane_moves_are_inverse_and_slice_the_right_axis():
    torch.manual_seed(0)
    volume = torch.randn(2, 3, 4, 5, 6)  # (B, C, D, H, W)
    axial = volume.transpose(1, 2).reshape(8, 3, 5, 6)
    coronal = to_plane(axial, 2, "DW")
    sagittal = to_plane(axial, 2, "DH")
    assert coronal.shape == (10, 3, 4, 6) and sagittal.shape == (12, 3, 4, 5)
    assert torch.equal(coronal[5 + 2], volume[1, :, :, 2, :])  # volume 1, row 2
    assert torch.equal(sagittal[6 + 4], volume[1, :, :, :, 4])  # volume 1, column 4
    for plane, moved in (("DW", coronal), ("DH", sagittal), ("HW", axial)):
        assert torch.equal(from_plane(moved, 2, plane), axial)


def test_pcm_equals_pcg_and_options(resnet50):
    volumes = torch.randn(1, 1, 4, 32, 32)
    pcm = liftbench.lift(resnet50, "pcm", schedule="DW,DH")
    pcm.unlift()
    pcg = liftbench.lift(resnet50, "pcg", schedule=["dw", "dh"])
    pcg.unlift()
    assert pcm.describe() == {"strategy": "pcm", "schedule": "DW,DH", "pooling": "mean"}
    assert pcg.describe() == {"strategy": "pcg", "schedule": "DW,DH", "pooling": "adaptive"}
    a = run_lifted(resnet50, volumes, "pcm", schedule="DW,DH")
    b = run_lifted(resnet50, volumes, "pcg", schedule=["dw", "dh"])
    assert torch.equal(a[0], b[0])
    with pytest.raises(UsageError, match="valid options"):
        ACSCNN(resnet50, schedule="HW")
    with pytest.raises(UsageError, match="unknown plane"):
        PlaneCycleCNN(resnet50, schedule="HW,XY")
    with pytest.raises(UsageError, match="pooling"):
        PlaneCycleCNN(resnet50, pooling="max")
    assert _unpatched(resnet50)


def test_lifting_a_lifted_model_twice_is_refused(resnet50):
    lifted = Inflated3DCNN(resnet50)
    with pytest.raises(UsageError, match="unlift"):
        ACSCNN(resnet50)
    relifted = liftbench.lift(lifted, "i3d")  # the public API unlifts a Lifted first
    assert isinstance(relifted, Inflated3DCNN)
    relifted.unlift()
    with pytest.raises(UsageError, match="unlifted"):
        lifted(torch.randn(*VOLUME))
    assert _unpatched(resnet50)


# ------------------------------------------------------------------------------- inflated convs (I3D)


CONVS = [
    (k, s, p, d, g)
    for k in (1, 3, 7)
    for s in (1, 2)
    for p in sorted({0, k // 2})
    for d in ((1, 2) if k > 1 else (1,))
    for g in (1, 4)
]


def _inflated_interior(conv, image, depth=20):
    """Inflated conv on a depth-constant volume: the output slices whose receptive field stays inside the volume."""
    k, s, p, d = conv_geometry(conv, "conv")
    volume = image.unsqueeze(2).expand(-1, -1, depth, -1, -1)
    with torch.no_grad():
        out3d = inflated_conv(conv, (k, s, p, d), volume)
    interior = [j for j in range(out3d.shape[2]) if j * s - p >= 0 and j * s - p + d * (k - 1) < depth]
    assert interior
    return out3d[:, :, interior]


def _conv_case(k, s, p, d, groups):
    torch.manual_seed(k * 100 + s * 10 + p + d + groups)
    return nn.Conv2d(4, 8, k, s, p, d, groups), torch.randn(2, 4, 19, 19)


@pytest.mark.parametrize("k, s, p, d, groups", CONVS)
def test_inflated_conv_on_depth_constant_volume_equals_2d_conv(k, s, p, d, groups):
    conv, image = _conv_case(k, s, p, d, groups)
    with torch.no_grad():
        expected = conv(image)
    interior = _inflated_interior(conv, image)
    assert_close_to(interior, expected.unsqueeze(2).expand_as(interior), TOL_OP)


@pytest.mark.parametrize("k, s, p, d, groups", [c for c in CONVS if c[0] > 1])  # a 1-tap kernel has nothing to divide
def test_inflation_property_catches_an_undivided_kernel(monkeypatch, request, k, s, p, d, groups):
    conv, image = _conv_case(k, s, p, d, groups)
    with torch.no_grad():
        expected = conv(image)
    with monkeypatch.context() as mp:
        mutated(mp, "i3d.kernel-not-divided")
        wrong = _inflated_interior(conv, image)
    assert_caught(wrong, expected.unsqueeze(2).expand_as(wrong), TOL_OP, request)


def _batch_norm_pair(momentum, nontrivial_weights):
    bn2 = nontrivial_weights(nn.BatchNorm2d(4, momentum=momentum)).train()  # weight 1, bias 0 would hide the affine step
    bn3 = nn.BatchNorm3d(4, momentum=momentum)
    bn3.load_state_dict(bn2.state_dict())
    return bn2, bn3


def test_batch_norm_5d_matches_batchnorm3d_in_train_and_eval(nontrivial_weights):
    torch.manual_seed(0)
    for momentum in (0.1, None):
        bn2, bn3 = _batch_norm_pair(momentum, nontrivial_weights)
        for _ in range(2):
            x = torch.randn(2, 4, 3, 5, 5)
            assert_close_to(batch_norm_5d(bn2, x), bn3(x), TOL_OP)
        assert_close_to((bn2.running_mean, bn2.running_var), (bn3.running_mean, bn3.running_var), TOL_OP)
        assert bn2.num_batches_tracked == bn3.num_batches_tracked == 2
        bn2.eval(), bn3.eval()
        assert_close_to(batch_norm_5d(bn2, x), bn3(x), TOL_OP)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batch_norm_5d_comparison_catches(nontrivial_weights, monkeypatch, request, mode):
    bn2, bn3 = _batch_norm_pair(0.1, nontrivial_weights)
    bn2.train(mode == "train"), bn3.train(mode == "train")
    x = torch.randn(2, 4, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    with monkeypatch.context() as mp:
        mutated(mp, "bn5d.weight-ignored")
        wrong = batch_norm_5d(bn2, x)
    assert_caught(wrong, bn3(x), TOL_OP, request)


# ---------------------------------------------------------------------------------------------- ACS


def test_acs_split_gives_the_remainder_to_the_first_groups():
    assert acs_split(9) == (3, 3, 3) and acs_split(7) == (3, 2, 2) and acs_split(8) == (3, 3, 2)
    assert acs_split(1) == (1, 0, 0) and acs_split(64) == (22, 21, 21)


ACS_CASES = [
    # (in, out, k, stride, padding, dilation, groups, input DHW)
    *[(4, 7, k, s, k // 2, 1, 1, (8, 9, 10)) for k in (1, 3, 7) for s in (1, 2)],
    *[(4, 8, k, s, 0, 1, 1, (9, 10, 11)) for k in (1, 3, 7) for s in (1, 2)],  # acsconv's pad-and-crop path
    (3, 6, 3, 1, 2, 2, 1, (8, 8, 8)),  # dilated "same"
    (3, 5, 7, 2, 3, 1, 1, (15, 16, 17)),  # odd lengths, strided
    (3, 4, 4, 4, 0, 1, 1, (16, 16, 16)),  # ConvNeXt-style patchify stem
    (3, 5, 1, 1, 1, 1, 1, (6, 6, 6)),  # padding larger than the kernel needs
    *[(9, 9, k, s, k // 2, 1, 9, (8, 10, 12)) for k in (3, 7) for s in (1, 2)],  # depthwise
    (8, 8, 3, 1, 2, 2, 8, (9, 9, 9)),  # depthwise, dilated
]


def _acs_oracle_case(cin, cout, k, s, p, d, g, size):
    import acsconv.operators as acsconv  # a test dependency: the independent ACS oracle
    torch.manual_seed(cin + cout + k + s + p + d + g)
    conv = nn.Conv2d(cin, cout, k, s, p, d, g)
    oracle = acsconv.ACSConv(cin, cout, k, s, p, d, g)
    with torch.no_grad():
        oracle.weight.copy_(conv.weight)
        oracle.bias.copy_(conv.bias)
        x = torch.randn(2, cin, *size)
        return conv, x, oracle(x)


@pytest.mark.parametrize("cin, cout, k, s, p, d, g, size", ACS_CASES)
def test_acs_conv_matches_the_acsconv_package(cin, cout, k, s, p, d, g, size):
    conv, x, expected = _acs_oracle_case(cin, cout, k, s, p, d, g, size)
    with torch.no_grad():
        got = acs_conv3d(x, conv.weight, conv.bias, s, p, d, g)
    assert got.shape == expected.shape
    assert_close_to(got, expected, TOL_OP)


ACS_MUTANTS = [
    (case, mutation)
    for case in ACS_CASES
    for mutation, applies in (
        # equal thirds leave nothing to misplace, and a 1x1 kernel is the same on every plane
        ("acs.remainder-to-last-groups", case[1] % 3 != 0 and case[2] > 1),
        ("acs.kernels-transposed", case[2] > 1),  # a 1×1 kernel is its own transpose
    )
    if applies
]


@pytest.mark.parametrize("case, mutation", ACS_MUTANTS, ids=[f"{c[:7]}-{m}".replace(" ", "") for c, m in ACS_MUTANTS])
def test_acs_oracle_comparison_catches(monkeypatch, request, case, mutation):
    cin, cout, k, s, p, d, g, size = case
    conv, x, expected = _acs_oracle_case(*case)
    with monkeypatch.context() as mp, torch.no_grad():
        mutated(mp, mutation)
        wrong = acs_conv3d(x, conv.weight, conv.bias, s, p, d, g)
    assert_caught(wrong, expected, TOL_OP, request)


def _centred_cube_case(cin, cout, groups):
    """Same-padded ACS == conv3d with each 2D kernel put in the middle of its singleton axis."""
    torch.manual_seed(cout)
    k, d = 3, 2
    weight, bias = torch.randn(cout, cin // groups, k, k), torch.randn(cout)
    cube = torch.zeros(cout, cin // groups, k, k, k)
    a, c, _ = acs_split(cout)
    cube[:a, :, k // 2] = weight[:a]
    cube[a : a + c, :, :, k // 2] = weight[a : a + c]
    cube[a + c :, :, :, :, k // 2] = weight[a + c :]
    return weight, bias, cube, torch.randn(2, cin, 7, 8, 9), d * (k // 2), d


CUBE_CASES = [(8, 10, 2), (8, 12, 4), (6, 6, 6), (4, 8, 4), (6, 5, 1)]


@pytest.mark.parametrize("cin, cout, groups", CUBE_CASES)
@pytest.mark.parametrize("stride", [1, 2])
def test_acs_conv_any_groups_equals_centred_3d_kernels(cin, cout, groups, stride):
    weight, bias, cube, x, p, d = _centred_cube_case(cin, cout, groups)
    expected = F.conv3d(x, cube, bias, stride, p, d, groups)
    assert_close_to(acs_conv3d(x, weight, bias, stride, p, d, groups), expected, TOL_OP)


@pytest.mark.parametrize("cin, cout, groups", CUBE_CASES)
def test_acs_centred_cube_comparison_catches(monkeypatch, request, cin, cout, groups):
    weight, bias, cube, x, p, d = _centred_cube_case(cin, cout, groups)
    expected = F.conv3d(x, cube, bias, 1, p, d, groups)
    with monkeypatch.context() as mp:
        mutated(mp, "acs.kernels-transposed")
        wrong = acs_conv3d(x, weight, bias, 1, p, d, groups)
    assert_caught(wrong, expected, TOL_OP, request)


# ------------------------------------------------------------------------------ other architectures


def test_mobilenetv2_through_all_strategies():
    torch.manual_seed(0)
    model = timm.create_model("mobilenetv2_050", pretrained=False).eval()
    volumes = torch.randn(1, 1, 8, 32, 32)
    shapes = {}
    for strategy in STRATEGIES:
        lifted = liftbench.lift(model, strategy)
        with torch.no_grad():
            features = lifted(volumes)
        shapes[strategy] = (tuple(features.pooled.shape), tuple(features.patches.shape))
        assert lifted.unlift() is model and _unpatched(model)
    assert shapes["2d"] == ((1, 8, 1280), (1, 1280, 8, 1, 1))
    assert shapes["3d"] == shapes["acs"] == ((1, 1280), (1, 1280, 1, 1, 1))
    assert shapes["pcm"][1][:2] == (1, 1280) and shapes["pcm"] == shapes["pcg"]


def test_bad_layers_are_refused_at_lift_time_and_nothing_stays_patched():
    model = timm.create_model("resnet18", pretrained=False)
    model.layer1[0].conv2 = nn.Conv2d(64, 64, (1, 3), padding=(0, 1), bias=False)
    with pytest.raises(CannotLiftError, match=r"layer1\.0\.conv2.*non-square kernel"):
        Inflated3DCNN(model)
    assert _unpatched(model)

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward_features(self, x):
            return self.conv(x).flatten(2)

    with pytest.raises(CannotLiftError, match="Custom"):
        ACSCNN(Custom())
    with pytest.raises(CannotLiftError, match="no residual blocks"):
        PlaneCycleCNN(Custom())
    with pytest.raises(CannotLiftError, match="trunk"):
        Slice2DCNN(nn.Sequential(nn.Conv2d(3, 4, 3)))


def test_torchvision_resnet(nontrivial_weights, monkeypatch, request):
    import torchvision
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nontrivial_weights(torchvision.models.resnet18(weights=None))
    image = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(image)
        logits = lambda: model.fc(Slice2DCNN(model)(image.unsqueeze(2)).pooled[:, 0])  # noqa: E731 (one-slice volume)
        assert_close_to(logits(), expected, TOL)
        with monkeypatch.context() as mp:
            mutated(mp, "cnn.slices-transposed")
            assert_caught(logits(), expected, TOL, request)
        for strategy in ("3d", "acs", "pcm"):
            lifted = liftbench.lift(model, strategy)
            assert lifted(torch.randn(1, 1, 8, 32, 32)).patches.shape[:2] == (1, 512)
            lifted.unlift()
    assert _unpatched(model)
