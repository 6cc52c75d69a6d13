"""ViT lifting: the invariants of the definition in docs/strategies.md, shapes on every plane, and agreement
with references written here from that definition (explicit loops over slices and tokens, not the library's
code) — each agreement paired with mutation partners that plant a bug in the library and must miss.

Every comparison runs on the tiny DINOv3 of ``conftest.py``, whose LayerScale, norms and attention are drawn
so that every block changes its tokens (timm's own init moves them by ~1e-5, which no tolerance can see).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from mutations import assert_caught, assert_close_to, mutated, scaled_error

import liftbench
from liftbench.errors import UsageError
from liftbench.lifting import rope3d
from liftbench.lifting.planes import parse_schedule

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D, H, W = 5, 32, 48  # h = 2, w = 3 tokens per axial slice: D, h, w all different; 5 → 2 and 5 → 3 pool unevenly
VOLUME_SHAPE = (2, 1, D, H, W)

# Tolerances, on scaled_error = max|got - expected| / max|expected| (tests/helpers/mutations.py), set from measured fp32
# noise: the library in fp32 against the same reference run in float64 (model.double()), weight seeds 0-4,
# volume seeds 0-2, over the PlaneCycle cases of this file (PCm, PCg; schedules HW,DW,DH,HW / DH,DW / DW / DH /
# DW,HW,DH), flatten-3D, and slice-2D vs timm's forward_features (DINOv3, abs-pos ViT, DINOv2): largest 1.33e-6
# (median 9.6e-7). Two fp32 computations may each be that far from exact, so may differ by 2.7e-6; the tolerance
# is 10x the measured largest. (On this CPU the fp32 library and the fp32 loop reference agree bit for bit; the
# float64 comparison is what another BLAS, batching or device can legitimately change.)
TOL = 1.5e-5
TOL_2D = TOL  # slice-2D vs timm's own 2D forward: measured 9.0e-7 against float64, inside the same bound
# rope3d_embed (fp32 angles, sin, cos) vs the float64 formula: measured 3.2e-7 on 5 grids; 10x.
TOL_ROPE = 3e-6


@pytest.fixture(scope="module")
def volume():
    return torch.randn(*VOLUME_SHAPE, generator=torch.Generator().manual_seed(1))


# --- an independent reference, from the definition ---------------------------------------------------


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
    """PlaneCycle slice by slice: each block on its plane, globals pooled to the slice count and back."""
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


def ref_flatten3d(model, volume, base=100.0, sections=(8, 12, 12)):
    """One sequence per volume: the globals once, then every patch token in (D, h, w) order, 3D RoPE."""
    patches, globals_ = ref_tokens(model, volume)
    depth, h, w = patches.shape[1:4]
    seq = torch.cat([globals_[0], patches.reshape(patches.shape[0], -1, patches.shape[-1])], dim=1)
    rope = ref_rope3d((depth, h, w), base=base, sections=sections).float()
    for block in model.blocks:
        seq = block(seq, rope=rope)
    seq = model.norm(seq)
    g = globals_[0].shape[1]
    return seq[:, 0], seq[:, g:].reshape(patches.shape[0], depth, h, w, -1).permute(0, 4, 1, 2, 3)


@pytest.fixture(scope="module")
def reference(dinov3, volume):
    """Memoised references on the module's volume (each is computed once for all its mutation partners)."""

    @functools.cache
    def compute(kind: str, schedule: str = "", pooling: str = ""):
        with torch.no_grad():
            if kind == "planecycle":
                return ref_planecycle(dinov3, volume, parse_schedule(schedule), pooling)
            return ref_flatten3d(dinov3, volume)

    return compute


def run(model, volume, strategy, **options):
    with torch.no_grad():
        features = liftbench.lift(model, strategy, **options)(volume)
    return features.pooled, features.patches


# --- the weights make every block matter ---------------------------------------------------------------


@torch.no_grad()
def test_every_vit_block_matters(dinov3, volume):
    """Each block moves the tokens it is given by >= 2% (timm's LayerScale 1e-5 init: ~1e-5; these weights: 7-12%)."""
    patches, globals_ = ref_tokens(dinov3, volume)
    seq = torch.cat([globals_[0], patches[:, 0].reshape(2, -1, 128)], dim=1)
    rope = dinov3.rope.get_embed(shape=[2, 3])
    for block in dinov3.blocks:
        out = block(seq, rope=rope)
        assert float((out - seq).norm() / seq.norm()) > 0.02
        seq = out


# --- invariants ----------------------------------------------------------------------------------


@torch.no_grad()
def test_planecycle_hw_equals_slice2d_bit_for_bit(dinov3, volume):
    slice2d = liftbench.lift(dinov3, "2d")(volume)
    cycle = liftbench.lift(dinov3, "pcg", schedule="HW")(volume)
    assert torch.equal(slice2d.pooled, cycle.pooled)
    assert torch.equal(slice2d.patches, cycle.patches)


@pytest.mark.parametrize("mutation", ["vit.PCm-pooling-for-PCg", "vit.block1-on-DW", "vit.plane-rope-grid-transposed"])
def test_hw_invariant_catches(dinov3, volume, monkeypatch, request, mutation):
    """Mutation partner of the bit-for-bit invariant: a wrong PlaneCycle-HW misses slice-2D by >= 100 x TOL."""
    expected = run(dinov3, volume, "2d")
    with monkeypatch.context() as mp:
        mutated(mp, mutation)
        wrong = run(dinov3, volume, "pcg", schedule="HW")
    assert_caught(wrong, expected, TOL, request)


def _per_slice_2d(model, volume):
    """timm's own 2D forward on every axial slice, one slice at a time: CLS (B, D, E)."""
    images = volume.expand(-1, 3, -1, -1, -1)
    return torch.stack([model.forward_features(images[:, :, d])[:, 0] for d in range(volume.shape[2])], dim=1)


def test_slice2d_is_the_2d_model_on_each_slice(dinov3, volume, monkeypatch, request):
    with torch.no_grad():
        expected = _per_slice_2d(dinov3, volume)
        assert_close_to(run(dinov3, volume, "2d")[0], expected, TOL_2D)
        with monkeypatch.context() as mp:
            mutated(mp, "vit.slices-reversed")
            wrong = run(dinov3, volume, "2d")[0]
    assert_caught(wrong, expected, TOL_2D, request)


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


# --- PlaneCycle against the reference, and its mutation partners ---------------------------------------


@pytest.mark.parametrize("schedule", ["HW,DW,DH,HW", "DH,DW", "DW", "DH", "DW,HW,DH"])
@pytest.mark.parametrize("strategy", ["pcg", "pcm"])
def test_planecycle_matches_reference(dinov3, volume, reference, strategy, schedule):
    pooling = "mean" if strategy == "pcm" else "adaptive"
    assert_close_to(run(dinov3, volume, strategy, schedule=schedule), reference("planecycle", schedule, pooling), TOL)


PLANECYCLE_MUTANTS = [
    *[
        ("pcg", "HW,DW,DH,HW", m)
        for m in (
            "vit.all-blocks-HW",
            "vit.schedule-shifted-by-one",
            "vit.DW-DH-swapped",
            "vit.PCm-pooling-for-PCg",
            "vit.plane-rope-grid-transposed",
        )
    ],
    *[("pcm", "HW,DW,DH,HW", m) for m in ("vit.all-blocks-HW", "vit.DW-DH-swapped", "vit.PCg-pooling-for-PCm")],
    *[("pcg", "DW", m) for m in ("vit.all-blocks-HW", "vit.DW-DH-swapped", "vit.PCm-pooling-for-PCg")],
    *[("pcg", "DH", m) for m in ("vit.DW-DH-swapped", "vit.PCm-pooling-for-PCg", "vit.plane-rope-grid-transposed")],
    *[("pcm", "DH,DW", m) for m in ("vit.schedule-shifted-by-one", "vit.PCg-pooling-for-PCm")],
]


@pytest.mark.parametrize("strategy, schedule, mutation", PLANECYCLE_MUTANTS)
def test_planecycle_reference_catches(dinov3, volume, reference, monkeypatch, request, strategy, schedule, mutation):
    pooling = "mean" if strategy == "pcm" else "adaptive"
    expected = reference("planecycle", schedule, pooling)
    with monkeypatch.context() as mp:
        mutated(mp, mutation)
        wrong = run(dinov3, volume, strategy, schedule=schedule)
    assert_caught(wrong, expected, TOL, request)


@pytest.mark.parametrize(
    "wrong_schedule, wrong_pooling",
    [("HW", "adaptive"), ("HW,DH,DW,HW", "adaptive"), ("DW,DH,HW,HW", "adaptive"), ("HW,DW,DH,HW", "mean")],
)
def test_reference_parameters_matter(dinov3, volume, reference, wrong_schedule, wrong_pooling):
    """The reference itself tells schedules and poolings apart: PCg on HW,DW,DH,HW is none of these."""
    assert scaled_error(run(dinov3, volume, "pcg", schedule="HW,DW,DH,HW"), reference("planecycle", wrong_schedule, wrong_pooling)) > 100 * TOL


# --- flatten-3D and its 3D RoPE ------------------------------------------------------------------------

ROPE_GRIDS = [(3, 2, 4), (5, 2, 3), (4, 4, 4)]


@pytest.mark.parametrize("grid", ROPE_GRIDS)
def test_rope3d_matches_the_formula(grid):
    assert_close_to(rope3d.rope3d_embed(grid, 64), ref_rope3d(grid), TOL_ROPE)


# Wrong 3D RoPEs (tests/helpers/mutations.py); the flatten-3D comparison also catches RoPE left out altogether.
ROPE3D_MUTATIONS = ["rope3d.sections-12-12-8", "rope3d.sections-12-8-12", "rope3d.HW-swapped", "rope3d.base-10000",
                    "rope3d.interleaved", "rope3d.uncentred-coords"]  # fmt: skip


@pytest.mark.parametrize("mutation", ROPE3D_MUTATIONS)
def test_rope3d_formula_catches(monkeypatch, request, mutation):
    grid = (3, 2, 4)
    with monkeypatch.context() as mp:
        mutated(mp, mutation)
        wrong = rope3d.rope3d_embed(grid, 64)
    assert_caught(wrong, ref_rope3d(grid), TOL_ROPE, request)


def test_flatten3d_matches_reference(dinov3, volume, reference):
    assert_close_to(run(dinov3, volume, "3d"), reference("flatten3d"), TOL)


@pytest.mark.parametrize("mutation", [*ROPE3D_MUTATIONS, "rope3d.dropped"])
def test_flatten3d_reference_catches(dinov3, volume, reference, monkeypatch, request, mutation):
    expected = reference("flatten3d")
    with monkeypatch.context() as mp:
        mutated(mp, mutation)
        wrong = run(dinov3, volume, "3d")
    assert_caught(wrong, expected, TOL, request)


@pytest.mark.parametrize("base, sections", [(10000.0, (8, 12, 12)), (100.0, (12, 12, 8)), (100.0, (16, 8, 8))])
@torch.no_grad()
def test_flatten3d_reference_parameters_matter(dinov3, volume, reference, base, sections):
    """The reference with a wrong base or wrong sections is far from the library (and from the right reference)."""
    wrong = ref_flatten3d(dinov3, volume, base=base, sections=sections)
    assert scaled_error(run(dinov3, volume, "3d"), wrong) > 100 * TOL


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


def _checkpointed(model, volume):
    checked = liftbench.lift(model, "pcg", checkpoint=True)(volume.clone().requires_grad_())
    checked.pooled.sum().backward()
    model.zero_grad(set_to_none=True)
    return checked.pooled.detach()


def test_activation_checkpointing_gives_the_same_result(dinov3, monkeypatch, request):
    volume = torch.randn(1, 1, 4, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        plain = liftbench.lift(dinov3, "pcg")(volume).pooled
    assert_close_to(_checkpointed(dinov3, volume), plain, TOL)
    with monkeypatch.context() as mp:
        mutated(mp, "vit.checkpoint-drops-rope")
        wrong = _checkpointed(dinov3, volume)
    assert_caught(wrong, plain, TOL, request)


# bf16 autocast vs fp32 on the same lifting: measured scaled error up to 9.9e-3 (2d), 6.3e-3 (3d), 1.1e-2 (pcg),
# weight seeds 0-4; about 10x.
TOL_BF16 = 0.1


@pytest.mark.parametrize("strategy", ["2d", "3d", "pcg"])
@torch.no_grad()
def test_bf16_autocast_path_runs(dinov3, strategy):
    volume = torch.randn(1, 1, 4, 32, 32, generator=torch.Generator().manual_seed(5))
    fp32 = liftbench.lift(dinov3, strategy)(volume).pooled
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = liftbench.lift(dinov3, strategy)(volume)
    assert 0 < scaled_error(features.pooled, fp32) < TOL_BF16  # bf16 did run, and stayed near fp32


def test_bad_schedule_and_options_are_usage_errors(dinov3):
    with pytest.raises(UsageError, match="'XY'.*HW, DW, DH"):
        liftbench.lift(dinov3, "pcg", schedule="HW,XY")
    with pytest.raises(UsageError, match="no option 'shedule'"):
        liftbench.lift(dinov3, "pcg", shedule="HW")
    with pytest.raises(UsageError, match="did you mean 'pcg'"):
        liftbench.lift(dinov3, "pgc")


# --- ViTs with learned absolute positions ----------------------------------------------------------


@pytest.fixture(scope="module")
def abs_vit(nontrivial_timm):
    return nontrivial_timm("vit_small_patch16_224", pretrained=False, img_size=32, depth=2, embed_dim=64, num_heads=2)


def assert_slice2d_is_timms_forward(model, volume, monkeypatch, request) -> None:
    """Slice-2D's class tokens equal timm's own forward of each slice (grey to RGB) at the model's training grid,
    and not once the absolute positions are dropped (the mutation partner)."""
    with torch.no_grad():
        expected = model.forward_features(volume[0].transpose(0, 1).expand(-1, 3, -1, -1))[:, 0]
        assert_close_to(run(model, volume, "2d")[0][0], expected, TOL_2D)
        with monkeypatch.context() as mp:
            mutated(mp, "vit.abs-pos-dropped")
            wrong = run(model, volume, "2d")[0][0]
    assert_caught(wrong, expected, TOL_2D, request)


def test_abs_pos_vit_slice2d_equals_timm_at_the_training_grid(abs_vit, monkeypatch, request):
    volume = torch.randn(1, 1, 5, 32, 32, generator=torch.Generator().manual_seed(6))
    assert_slice2d_is_timms_forward(abs_vit, volume, monkeypatch, request)


@pytest.mark.parametrize("strategy", ["2d", "3d", "pcm", "pcg"])
@torch.no_grad()
def test_abs_pos_vit_runs_every_strategy_on_other_grids(abs_vit, strategy):
    features = liftbench.lift(abs_vit, strategy)(torch.randn(1, 1, 8, 32, 48))
    assert features.patches.shape == (1, 64, 8, 2, 3)


# --- the real architecture, once --------------------------------------------------------------------


@torch.no_grad()
def test_real_vit_small_at_64_cubed():
    model = liftbench.lift(_real_vit_small(), "pcg", schedule="HW,DW,DH,HW")
    features = model(torch.rand(1, 1, 64, 64, 64))
    assert features.pooled.shape == (1, 64, 384)
    assert features.patches.shape == (1, 384, 64, 4, 4)
    assert torch.isfinite(features.patches).all()


def _real_vit_small():
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return timm.create_model("vit_small_patch16_dinov3", pretrained=False, global_pool="token").eval()


@pytest.mark.parametrize("strategy", ["2d", "3d", "pcg"])
@torch.no_grad()
def test_sizes_that_are_not_patch_multiples_are_resized_in_plane(dinov3, strategy):
    features = liftbench.lift(dinov3, strategy)(torch.rand(1, 1, 28, 28, 28))  # MedMNIST at 28
    assert features.patches.shape == (1, 128, 28, 2, 2)


@torch.no_grad()
def test_invariant_holds_at_28(dinov3):
    volume = torch.rand(1, 1, 28, 28, 28, generator=torch.Generator().manual_seed(7))
    assert torch.equal(liftbench.lift(dinov3, "2d")(volume).pooled, liftbench.lift(dinov3, "pcg", schedule="HW")(volume).pooled)


@pytest.fixture(scope="module")
def dinov2(nontrivial_timm):
    return nontrivial_timm("vit_small_patch14_reg4_dinov2", pretrained=False, img_size=28, depth=2, embed_dim=64, num_heads=1)


@pytest.mark.parametrize("strategy", ["2d", "3d", "pcm", "pcg"])
@torch.no_grad()
def test_dinov2_with_registers_and_absolute_positions(dinov2, strategy):
    features = liftbench.lift(dinov2, strategy)(torch.randn(1, 1, 6, 28, 28))
    assert features.patches.shape == (1, 64, 6, 2, 2)


def test_dinov2_slice2d_is_timms_forward_at_the_pretraining_grid(dinov2, monkeypatch, request):
    volume = torch.randn(1, 1, 6, 28, 28, generator=torch.Generator().manual_seed(8))
    assert_slice2d_is_timms_forward(dinov2, volume, monkeypatch, request)
