"""Weights: explicit random, local checkpoint files, the Hugging Face cache, and clear errors offline."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import timm
import torch
from safetensors.torch import save_file

from liftbench.backbones.timm_backbones import create_timm_backbone, random_seed, state_dict_sha256
from liftbench.errors import MissingFileError, UsageError

TINY = {"depth": 2, "embed_dim": 64, "num_heads": 1, "global_pool": "token"}
NAME = "vit_small_patch16_dinov3"


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(3)
    model = timm.create_model(NAME, pretrained=False, **TINY)
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model, path


def test_random_is_seeded_recorded_and_identified():
    """``random`` is seed 0; ``random:SEED`` another init; the sha256 tells the inits apart and the
    caller's RNG is left alone."""
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    model, info = create_timm_backbone("random", model_name=NAME, **TINY)
    assert torch.equal(torch.rand(1), before)  # the global RNG stream is untouched
    again, same = create_timm_backbone("random:0", model_name=NAME, **TINY)
    other, third = create_timm_backbone("random:7", model_name=NAME, **TINY)
    assert info.source == "random:0" == same.source and info.is_random and third.source == "random:7"
    assert info.sha256 == same.sha256 == state_dict_sha256(model) and len(info.sha256) == 64
    assert third.sha256 != info.sha256
    assert torch.equal(model.blocks[0].attn.qkv.weight, again.blocks[0].attn.qkv.weight)
    assert not torch.equal(model.blocks[0].attn.qkv.weight, other.blocks[0].attn.qkv.weight)


def test_random_seed_parsing():
    assert random_seed("random") == 0 and random_seed("random:12") == 12 and random_seed("pretrained") is None
    with pytest.raises(UsageError, match="random:abc.*integer seed"):
        random_seed("random:abc")


def test_state_dict_sha256_sees_one_changed_number(tiny_checkpoint):
    model, _ = tiny_checkpoint
    before = state_dict_sha256(model)
    with torch.no_grad():
        model.blocks[1].mlp.fc2.weight[0, 0] += 1e-3
    assert state_dict_sha256(model) != before


def test_local_safetensors_file_is_loaded_and_hashed(tiny_checkpoint):
    reference, path = tiny_checkpoint
    model, info = create_timm_backbone(str(path), model_name=NAME, **TINY)
    assert info.source == str(path) and info.sha256 == state_dict_sha256(reference)
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_local_pth_file_is_loaded(tiny_checkpoint, tmp_path):
    reference, _ = tiny_checkpoint
    path = tmp_path / "tiny.pth"
    torch.save(reference.state_dict(), path)
    model, info = create_timm_backbone(str(path), model_name=NAME, **TINY)
    assert torch.equal(model.blocks[1].mlp.fc2.weight, reference.blocks[1].mlp.fc2.weight)


def test_missing_file_names_it():
    with pytest.raises(MissingFileError, match="does not exist.*'pretrained', 'random' or the path"):
        create_timm_backbone("/nowhere/dinov3.pth", model_name=NAME, **TINY)


def test_offline_without_cache_says_what_to_get(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingFileError) as err:
        create_timm_backbone("pretrained", model_name=NAME, **TINY)
    message = str(err.value)
    assert "timm/vit_small_patch16_dinov3.lvd1689m" in message and "--weights PATH" in message and "--weights random" in message


def test_pretrained_comes_from_the_hugging_face_cache(tiny_checkpoint, tmp_path):
    """The checkpoint laid out as the hub cache holds it is found offline, loaded and hashed."""
    reference, path = tiny_checkpoint
    repo = tmp_path / "hub" / "models--timm--vit_small_patch16_dinov3.lvd1689m"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(path.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    script = textwrap.dedent(
        f"""
        import torch
        from liftbench.backbones.timm_backbones import create_timm_backbone
        model, info = create_timm_backbone("pretrained", model_name="{NAME}", depth=2, embed_dim=64, num_heads=1, global_pool="token")
        print(info.source, info.sha256, float(model.blocks[0].attn.qkv.weight.sum()))
        """
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    source, sha, checksum = out.stdout.split()
    assert source == "pretrained" and sha == state_dict_sha256(reference)
    assert float(checksum) == pytest.approx(float(reference.blocks[0].attn.qkv.weight.detach().sum()), rel=1e-6)


def test_metas_original_dinov3_checkpoint_is_converted(tiny_checkpoint, tmp_path):
    """Meta's key names (storage_tokens, ls1.gamma, rope_embed.periods, qkv.bias + bias_mask) load via timm."""
    reference, _ = tiny_checkpoint
    meta = {}
    for key, value in reference.state_dict().items():
        key = key.replace("gamma_1", "ls1.gamma").replace("gamma_2", "ls2.gamma").replace("reg_token", "storage_tokens")
        meta[key] = value.clone()
    dim = reference.embed_dim
    meta["mask_token"] = torch.zeros(1, dim)
    meta["rope_embed.periods"] = torch.ones(16, dtype=torch.bfloat16)
    for i in range(len(reference.blocks)):
        meta[f"blocks.{i}.attn.qkv.bias"] = torch.zeros(3 * dim)
        meta[f"blocks.{i}.attn.qkv.bias_mask"] = torch.ones(3 * dim)
    path = tmp_path / "dinov3_vits16_pretrain_tiny.pth"
    torch.save(meta, path)
    model, info = create_timm_backbone(str(path), model_name=NAME, **TINY)
    assert info.sha256 == state_dict_sha256(model)
    assert torch.equal(model.reg_token, reference.reg_token)
    assert torch.equal(model.blocks[1].gamma_2, reference.blocks[1].gamma_2)
