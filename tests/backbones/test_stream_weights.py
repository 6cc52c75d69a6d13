"""Streaming a safetensors checkpoint into a meta-built model (liftbench.backbones.stream_weights): the loaded model holds the
file's numbers in the file's dtype, its RoPE buffers are computed, and a changed file gives a changed model."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from liftbench.backbones.stream_weights import should_stream, stream_safetensors
from liftbench.backbones.timm_backbones import create_timm_backbone
from liftbench.errors import UsageError
from liftbench.testing import TINY_VIT

KW = {k: v for k, v in TINY_VIT.items() if k != "model_name"}


def _saved(tmp_path, nontrivial, dtype=torch.bfloat16, change: str = ""):
    model, _ = create_timm_backbone("random:3", **TINY_VIT)
    nontrivial(model)  # LayerScale drawn non-trivially: every block matters
    state = {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()}
    if change:
        state[change] = state[change] + 0.5
    path = tmp_path / f"w{change.replace('.', '_')}.safetensors"
    save_file(state, str(path))
    return model, path


def test_a_streamed_model_holds_the_file_s_tensors(tmp_path, nontrivial_weights):
    reference, path = _saved(tmp_path, nontrivial_weights)
    streamed = stream_safetensors(TINY_VIT["model_name"], path, **KW)
    assert {p.dtype for p in streamed.parameters()} == {torch.bfloat16}  # no float32 copy made
    for name, value in reference.state_dict().items():
        assert torch.equal(streamed.state_dict()[name], value.to(torch.bfloat16)), name
    assert torch.equal(streamed.rope.periods, reference.rope.periods)  # computed, not left on meta
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        same = (streamed.float()(x) - reference.to(torch.bfloat16).float()(x)).abs().max()
        _, changed_path = _saved(tmp_path, nontrivial_weights, change="blocks.0.attn.qkv.weight")
        changed = stream_safetensors(TINY_VIT["model_name"], changed_path, **KW).float()(x)
    assert same == 0 and (changed - reference.to(torch.bfloat16).float()(x)).abs().max() > 1e-2


def test_streaming_is_for_large_safetensors_and_checks_keys(tmp_path, nontrivial_weights):
    _, path = _saved(tmp_path, nontrivial_weights)
    assert not should_stream(TINY_VIT["model_name"], path, **KW)  # small: timm's own loader
    assert should_stream(TINY_VIT["model_name"], path, minimum=0, **KW)
    assert not should_stream(TINY_VIT["model_name"], tmp_path / "w.pth", minimum=0, **KW)
    assert should_stream("vit_7b_patch16_dinov3", tmp_path / "w.safetensors", global_pool="token")
    with pytest.raises(UsageError, match="missing key"):
        stream_safetensors(TINY_VIT["model_name"], path, **{**KW, "depth": 3})
