"""ViT lifting: the SPEC's invariants, shapes on every plane, and agreement with a reference written
here from the SPEC's formulas (explicit loops over slices and tokens, not the library's code)."""

from __future__ import annotations

import math

import pytest
import timm
import torch

import liftbench
from liftbench.errors import UsageError
from liftbench.lifting.planes import parse_schedule
from liftbench.lifting.rope3d import rope3d_embed

D, H, W = 24, 32, 48  # non-cubic: h = 2, w = 3 tokens per axial slice


@pytest.fixture(scope="module")
def dinov3():
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_dinov3", pretrained=False, global_pool="token", depth=4, embed_dim=128, num_heads=2)
    return model.eval()


@pytest.fixture(scope="module")
def volume():
    return torch.randn(2, 1, D, H, W, generator=torch.Generator().manual_seed(1))


# --- an independent reference, from SPEC.md ------------------------------------------------------


def ref_adaptive_pool(items: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    """adaptive_avg_pool1d by its definition: output i averages inputs floor(iL/S) .. ceil((i+1)L/S)-1."""
    length = len(items)
    return [torch.stack(items[(i * length) // count : -(-((i + 1) * length) // count)]).mean(0) for i in range(count)]


def ref_tokens(model, volume):
    """Patch tokens (B, D, h, w, E) and per-slice global tokens, slice by slice."""
    x = volume.expand(-1, 3, -1, -1, -1)
    per_slice = [model.patch_embed(x[:, :, d]) for d in range(x.shape[2])]  # dynamic size: (B, h, w, E)
    patches = torch.stack(per_slice, dim=1)
    glob = torch.cat([model.cls_token, model.reg_token], dim=1)[0]
    return patches, [glob.expand(x.shape[0], -1, -1) for _ in range(x.shape[2])]


def ref_planecycle(model, volume, schedule, pooling):
    patches, globals_ = ref_tokens(model, volume)
    depth, h, w = patches.shape[1:4]
    g = globals_[0].shape[1]
    for i, block in enumerate(model.blocks):
        plane = schedule[i % len(schedule)]
        axis = {"HW": 1, "DW": 2, "DH": 3}[plane]
        count, grid = {"HW": (depth, (h, w)), "DW": (h, (depth, w)), "DH": (w, (depth, h))}[plane]
        if pooling == "mean":
            mean = torch.stack(globals_).mean(0)
            entering = [mean] * count
        else:
            entering = ref_adaptive_pool(globals_, count)
        rope = model.rope.get_embed(shape=list(grid))
        new_patches = torch.empty_like(patches)
        leaving = []
        for s in range(count):
            seq = torch.cat([entering[s], patches.select(axis, s).reshape(patches.shape[0], -1, patches.shape[-1])], dim=1)
            out = block(seq, rope=rope)
            leaving.append(out[:, :g])
            tokens = out[:, g:].reshape(patches.shape[0], grid[0], grid[1], -1)
            if plane == "HW":
                new_patches[:, s] = tokens
            elif plane == "DW":
                new_patches[:, :, s] = tokens
            else:
                new_patches[:, :, :, s] = tokens
        patches = new_patches
        globals_ = ref_adaptive_pool(leaving, depth)
    cls = torch.stack([model.norm(gl)[:, 0] for gl in globals_], dim=1)
    return cls, model.norm(patches).permute(0, 4, 1, 2, 3)


def ref_rope3d(grid, head_dim=64, base=100.0, sections=(8, 12, 12)):
    """Token by token: angles [D-, H-, W-section], half layout, then [sin, cos]."""
    rows = []
    for d in range(grid[0]):
        for y in range(grid[1]):
            for x in range(grid[2]):
                angles = []
                for coord, length, n in zip((d, y, x), grid, sections, strict=True):
                    c = ((coord + 0.5) / length) * 2 - 1
                    angles += [2 * math.pi * c / (base ** (j / n)) for j in range(n)]
                angles = angles + angles
                rows.append([math.sin(a) for a in angles] + [math.cos(a) for a in angles])
    assert len(rows[0]) == 2 * head_dim
    return torch.tensor(rows, dtype=torch.float64)


# --- invariants ----------------------------------------------------------------------------------


@torch.no_grad()
def test_planecycle_hw_equals_slice2d_bit_for_bit(dinov3, volume):
    slice2d = liftbench.lift(dinov3, "2d")(volume)
    cycle = liftbench.lift(dinov3, "pcg", schedule="HW")(volume)
    assert torch.equal(slice2d.pooled, cycle.pooled)
    assert torch.equal(slice2d.patches, cycle.patches)


@torch.no_grad()
def test_slice2d_is_the_2d_model_on_each_slice(dinov3, volume):
    features = liftbench.lift(dinov3, "2d")(volume)
    image = volume[1, :, 7].expand(3, -1, -1)[None]
    expected = dinov3.forward_features(image)
    torch.testing.assert_close(features.pooled[1, 7], expected[0, 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("schedule", ["HW", "DW", "DH", "HW,DW,DH,HW", "DH,DW"])
@pytest.mark.parametrize("strategy", ["pcm", "pcg"])
@torch.no_grad()
def test_shapes_on_every_plane(dinov3, volume, strategy, schedule):
    features = liftbench.lift(dinov3, strategy, schedule=schedule)(volume)
    assert features.pooled.shape == (2, D, 128)
    assert features.patches.shape == (2, 128, D, H // 16, W // 16)
    assert features.per_slice


@torch.no_grad()
def test_flatten3d_shapes(dinov3, volume):
    features = liftbench.lift(dinov3, "3d")(volume)
    assert features.pooled.shape == (2, 128)
    assert features.patches.shape == (2, 128, D, 2, 3)
    assert not features.per_slice


@pytest.mark.parametrize("schedule", ["HW,DW,DH,HW", "DH,DW", "DW"])
@pytest.mark.parametrize("strategy", ["pcg", "pcm"])
@torch.no_grad()
def test_planecycle_matches_reference(dinov3, strategy, schedule):
    volume = torch.randn(1, 1, 8, 32, 48, generator=torch.Generator().manual_seed(2))
    pooling = "mean" if strategy == "pcm" else "adaptive"
    expected_cls, expected_patches = ref_planecycle(dinov3, volume, parse_schedule(schedule), pooling)
    features = liftbench.lift(dinov3, strategy, schedule=schedule)(volume)
    torch.testing.assert_close(features.pooled, expected_cls, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(features.patches, expected_patches, rtol=1e-4, atol=1e-4)


def test_pcm_and_pcg_differ_when_counts_differ(dinov3, volume):
    with torch.no_grad():
        pcm = liftbench.lift(dinov3, "pcm")(volume)
        pcg = liftbench.lift(dinov3, "pcg")(volume)
    assert not torch.allclose(pcm.pooled, pcg.pooled)


def test_rope3d_matches_the_formula():
    grid = (3, 2, 4)
    expected = ref_rope3d(grid)
    torch.testing.assert_close(rope3d_embed(grid, 64).double(), expected, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_flatten3d_matches_reference(dinov3):
    volume = torch.randn(1, 1, 4, 32, 48, generator=torch.Generator().manual_seed(3))
    patches, globals_ = ref_tokens(dinov3, volume)
    seq = torch.cat([globals_[0], patches.reshape(1, -1, patches.shape[-1])], dim=1)
    rope = ref_rope3d((4, 2, 3)).float()
    for block in dinov3.blocks:
        seq = block(seq, rope=rope)
    seq = dinov3.norm(seq)
    features = liftbench.lift(dinov3, "3d")(volume)
    torch.testing.assert_close(features.pooled, seq[:, 0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(features.patches, seq[:, 5:].reshape(1, 4, 2, 3, -1).permute(0, 4, 1, 2, 3), rtol=1e-4, atol=1e-4)


# --- the module contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["2d", "3d", "pcm", "pcg"])
def test_wraps_the_models_parameters_and_trains_them(dinov3, strategy):
    lifted = liftbench.lift(dinov3, strategy)
    assert [id(p) for p in lifted.parameters()] == [id(p) for p in dinov3.parameters()]
    volume = torch.randn(1, 1, 4, 32, 32)
    (lifted(volume).pooled ** 2).sum().backward()
    assert dinov3.blocks[0].attn.qkv.weight.grad is not None
    assert dinov3.blocks[-1].mlp.fc2.weight.grad.abs().sum() > 0
    dinov3.zero_grad(set_to_none=True)
    assert lifted.unlift() is dinov3
    assert liftbench.lift(lifted, "2d").model is dinov3  # re-lifting a lifted model lifts the 2D model


def test_activation_checkpointing_gives_the_same_result(dinov3):
    volume = torch.randn(1, 1, 4, 32, 32)
    plain = liftbench.lift(dinov3, "pcg")(volume).pooled
    checked = liftbench.lift(dinov3, "pcg", checkpoint=True)(volume.requires_grad_())
    checked.pooled.sum().backward()
    torch.testing.assert_close(plain, checked.pooled)
    dinov3.zero_grad(set_to_none=True)


@pytest.mark.parametrize("strategy", ["2d", "3d", "pcg"])
def test_bf16_autocast_path_runs(dinov3, strategy):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        features = liftbench.lift(dinov3, strategy)(torch.randn(1, 1, 4, 32, 32))
    assert torch.isfinite(features.pooled.float()).all()


def test_bad_schedule_and_options_are_usage_errors(dinov3):
    with pytest.raises(UsageError, match="'XY'.*HW, DW, DH"):
        liftbench.lift(dinov3, "pcg", schedule="HW,XY")
    with pytest.raises(UsageError, match="no option 'shedule'"):
        liftbench.lift(dinov3, "pcg", shedule="HW")
    with pytest.raises(UsageError, match="did you mean 'pcg'"):
        liftbench.lift(dinov3, "pgc")


# --- ViTs with learned absolute positions ----------------------------------------------------------


@pytest.fixture(scope="module")
def abs_vit():
    torch.manual_seed(0)
    return timm.create_model("vit_small_patch16_224", pretrained=False, img_size=32, depth=2, embed_dim=64, num_heads=2).eval()


@torch.no_grad()
def test_abs_pos_vit_slice2d_equals_timm_at_the_training_grid(abs_vit):
    volume = torch.randn(1, 1, 5, 32, 32)
    features = liftbench.lift(abs_vit, "2d")(volume)
    expected = abs_vit.forward_features(volume[0].transpose(0, 1).expand(-1, 3, -1, -1))
    torch.testing.assert_close(features.pooled[0], expected[:, 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strategy", ["2d", "3d", "pcm", "pcg"])
@torch.no_grad()
def test_abs_pos_vit_runs_every_strategy_on_other_grids(abs_vit, strategy):
    features = liftbench.lift(abs_vit, strategy)(torch.randn(1, 1, 8, 32, 48))
    assert features.patches.shape == (1, 64, 8, 2, 3)


# --- the real architecture, once --------------------------------------------------------------------


@torch.no_grad()
def test_real_vit_small_at_64_cubed():
    model = timm.create_model("vit_small_patch16_dinov3", pretrained=False, global_pool="token").eval()
    features = liftbench.lift(model, "pcg", schedule="HW,DW,DH,HW")(torch.rand(1, 1, 64, 64, 64))
    assert features.pooled.shape == (1, 64, 384)
    assert features.patches.shape == (1, 384, 64, 4, 4)
    assert torch.isfinite(features.patches).all()


@pytest.mark.parametrize("strategy", ["2d", "3d", "pcg"])
@torch.no_grad()
def test_sizes_that_are_not_patch_multiples_are_resized_in_plane(dinov3, strategy):
    features = liftbench.lift(dinov3, strategy)(torch.rand(1, 1, 28, 28, 28))  # MedMNIST at 28
    assert features.patches.shape == (1, 128, 28, 2, 2)


@torch.no_grad()
def test_invariant_holds_at_28(dinov3):
    volume = torch.rand(1, 1, 28, 28, 28)
    assert torch.equal(liftbench.lift(dinov3, "2d")(volume).pooled, liftbench.lift(dinov3, "pcg", schedule="HW")(volume).pooled)


@pytest.mark.parametrize("strategy", ["2d", "3d", "pcm", "pcg"])
@torch.no_grad()
def test_dinov2_with_registers_and_absolute_positions(strategy):
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False, img_size=28, depth=2, embed_dim=64, num_heads=1).eval()
    volume = torch.randn(1, 1, 6, 28, 28)
    features = liftbench.lift(model, strategy)(volume)
    assert features.patches.shape == (1, 64, 6, 2, 2)
    if strategy == "2d":  # at the pretraining grid, slice-2D is timm's own forward on each slice
        expected = model.forward_features(volume[0].transpose(0, 1).expand(-1, 3, -1, -1))
        torch.testing.assert_close(features.pooled[0], expected[:, 0], rtol=1e-5, atol=1e-5)
