"""CNN liftings: slice-2D, inflated 3D, ACS and PlaneCycle (SPEC.md, "CNN backbones")."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import liftbench
from liftbench.errors import CannotLiftError, UsageError
from liftbench.lifting.cnn_acs import ACSCNN, acs_conv3d, acs_split
from liftbench.lifting.cnn_inflate import Inflated3DCNN, inflated_conv
from liftbench.lifting.cnn_planecycle import PlaneCycleCNN, find_blocks, from_plane, to_plane
from liftbench.lifting.cnn_slice2d import Slice2DCNN
from liftbench.lifting.cnn_volume import batch_norm_5d, conv_geometry

timm = pytest.importorskip("timm")

STRATEGIES = ("2d", "3d", "acs", "pcm", "pcg")
VOLUME = (1, 1, 16, 32, 32)


@pytest.fixture(scope="module")
def resnet50():
    torch.manual_seed(0)
    return timm.create_model("resnet50", pretrained=False).eval()


@pytest.fixture(scope="module")
def volume():
    torch.manual_seed(1)
    return torch.randn(*VOLUME)


def _unpatched(model: nn.Module) -> bool:
    return not any("forward" in m.__dict__ for m in model.modules())


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
    assert isinstance(lifted, cls) and lifted.model is resnet50
    assert lifted.describe()["strategy"] == strategy
    assert sum(p.numel() for p in lifted.parameters()) == sum(p.numel() for p in params.values())
    assert all(a is b for a, b in zip(lifted.model.parameters(), params.values(), strict=True))
    with torch.no_grad():
        features = lifted(volume)
    assert tuple(features.pooled.shape) == pooled and tuple(features.patches.shape) == patches
    assert torch.isfinite(features.pooled).all()
    assert features.per_slice == (strategy in ("2d", "pcm", "pcg"))
    model = lifted.unlift()
    assert model is resnet50 and _unpatched(model)
    assert dict(model.named_modules()) == modules
    assert all(a is b for a, b in zip(model.parameters(), params.values(), strict=True))
    with torch.no_grad():
        assert torch.equal(model(image), before)


@pytest.mark.parametrize("strategy", ["2d", "3d", "acs", "pcg"])
def test_gradients_reach_the_2d_weights(strategy):
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False)
    for m in model.modules():  # timm zero-inits each block's last BN gamma, which blocks the branch's grads
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
    lifted = liftbench.lift(model, strategy)
    lifted(torch.randn(2, 1, 8, 32, 32)).pooled.square().mean().backward()
    for name, param in model.named_parameters():
        if not name.startswith("fc."):
            assert param.grad is not None and param.grad.abs().sum() > 0, name
    lifted.unlift()


def test_planecycle_hw_only_equals_slice2d_bit_for_bit(resnet50, volume):
    volumes = torch.randn(2, 1, 6, 32, 32)
    with torch.no_grad():
        slices = Slice2DCNN(resnet50)(volumes)
        cycle = PlaneCycleCNN(resnet50, schedule="HW")
        planes = cycle(volumes)
    cycle.unlift()
    assert torch.equal(slices.pooled, planes.pooled) and torch.equal(slices.patches, planes.patches)


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
    with torch.no_grad():
        lifted(torch.randn(2, 1, 4, 32, 24))  # after the stem: (D, H, W) = (4, 8, 6)
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
    with torch.no_grad():
        pcm = liftbench.lift(resnet50, "pcm", schedule="DW,DH")
        a = pcm(volumes)
        assert pcm.describe() == {"strategy": "pcm", "schedule": "DW,DH", "pooling": "mean"}
        pcm.unlift()
        pcg = liftbench.lift(resnet50, "pcg", schedule=["dw", "dh"])
        b = pcg(volumes)
        assert pcg.describe() == {"strategy": "pcg", "schedule": "DW,DH", "pooling": "adaptive"}
        pcg.unlift()
    assert torch.equal(a.pooled, b.pooled)
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


@pytest.mark.parametrize("k, s, p, d, groups", CONVS)
def test_inflated_conv_on_depth_constant_volume_equals_2d_conv(k, s, p, d, groups):
    torch.manual_seed(k * 100 + s * 10 + p + d + groups)
    conv = nn.Conv2d(4, 8, k, s, p, d, groups)
    image = torch.randn(2, 4, 19, 19)
    depth = 20
    volume = image.unsqueeze(2).expand(-1, -1, depth, -1, -1)
    with torch.no_grad():
        out3d = inflated_conv(conv, conv_geometry(conv, "conv"), volume)
        out2d = conv(image)
    interior = [j for j in range(out3d.shape[2]) if j * s - p >= 0 and j * s - p + d * (k - 1) < depth]
    assert interior
    for j in interior:
        torch.testing.assert_close(out3d[:, :, j], out2d, atol=1e-5, rtol=1e-5)


def test_batch_norm_5d_matches_batchnorm3d_in_train_and_eval():
    torch.manual_seed(0)
    for momentum in (0.1, None):
        bn2 = nn.BatchNorm2d(4, momentum=momentum)
        bn3 = nn.BatchNorm3d(4, momentum=momentum)
        bn3.load_state_dict(bn2.state_dict())
        for _ in range(2):
            x = torch.randn(2, 4, 3, 5, 5)
            torch.testing.assert_close(batch_norm_5d(bn2, x), bn3(x))
        torch.testing.assert_close(bn2.running_mean, bn3.running_mean)
        torch.testing.assert_close(bn2.running_var, bn3.running_var)
        assert bn2.num_batches_tracked == bn3.num_batches_tracked == 2
        bn2.eval(), bn3.eval()
        torch.testing.assert_close(batch_norm_5d(bn2, x), bn3(x))


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


@pytest.mark.parametrize("cin, cout, k, s, p, d, g, size", ACS_CASES)
def test_acs_conv_matches_the_acsconv_package(cin, cout, k, s, p, d, g, size):
    acsconv = pytest.importorskip("acsconv.operators")
    torch.manual_seed(cin + cout + k + s + p + d + g)
    conv = nn.Conv2d(cin, cout, k, s, p, d, g)
    oracle = acsconv.ACSConv(cin, cout, k, s, p, d, g)
    with torch.no_grad():
        oracle.weight.copy_(conv.weight)
        oracle.bias.copy_(conv.bias)
        x = torch.randn(2, cin, *size)
        expected = oracle(x)
        got = acs_conv3d(x, conv.weight, conv.bias, s, p, d, g)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cin, cout, groups", [(8, 10, 2), (8, 12, 4), (6, 6, 6), (4, 8, 4), (6, 5, 1)])
def test_acs_conv_any_groups_equals_centred_3d_kernels(cin, cout, groups):
    """Same-padded ACS == conv3d with each 2D kernel put in the middle of its singleton axis."""
    torch.manual_seed(cout)
    k, d = 3, 2
    p = d * (k // 2)
    weight, bias = torch.randn(cout, cin // groups, k, k), torch.randn(cout)
    cube = torch.zeros(cout, cin // groups, k, k, k)
    a, c, _ = acs_split(cout)
    cube[:a, :, k // 2] = weight[:a]
    cube[a : a + c, :, :, k // 2] = weight[a : a + c]
    cube[a + c :, :, :, :, k // 2] = weight[a + c :]
    x = torch.randn(2, cin, 7, 8, 9)
    for s in (1, 2):
        expected = F.conv3d(x, cube, bias, s, p, d, groups)
        torch.testing.assert_close(acs_conv3d(x, weight, bias, s, p, d, groups), expected, atol=1e-5, rtol=1e-5)


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


def test_convnext_3d_names_the_layer_it_cannot_lift():
    torch.manual_seed(0)
    model = timm.create_model("convnext_atto", pretrained=False).eval()
    volumes = torch.randn(1, 1, 4, 32, 32)
    for strategy in ("3d", "acs"):
        lifted = liftbench.lift(model, strategy)
        with pytest.raises(CannotLiftError, match=r"stages\.0\.blocks\.0.*ConvNeXtBlock"):
            lifted(volumes)
        lifted.unlift()
    for strategy in ("2d", "pcg"):  # these only ever show the model 2D slices
        lifted = liftbench.lift(model, strategy)
        with torch.no_grad():
            assert lifted(volumes).patches.shape[:2] == (1, 320)
        lifted.unlift()
    assert _unpatched(model)


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


def test_torchvision_resnet():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    image = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        slices = Slice2DCNN(model)(image.unsqueeze(2))  # one-slice volume
        torch.testing.assert_close(model.fc(slices.pooled[:, 0]), model(image))
        for strategy in ("3d", "acs", "pcm"):
            lifted = liftbench.lift(model, strategy)
            assert lifted(torch.randn(1, 1, 8, 32, 32)).patches.shape[:2] == (1, 512)
            lifted.unlift()
    assert _unpatched(model)
