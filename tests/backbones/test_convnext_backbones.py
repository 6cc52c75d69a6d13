"""The registered DINOv3 ConvNeXts: names, random weights, Meta's checkpoint format, offline errors, lifting."""

from __future__ import annotations

import pytest
import timm
import torch

import liftbench
from liftbench.backbones.timm_backbones import create_timm_backbone, state_dict_sha256
from liftbench.errors import MissingFileError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONVNEXTS = {"convnext-t": "tiny", "convnext-s": "small", "convnext-b": "base", "convnext-l": "large"}
TINY = {"depths": (1, 1, 1, 1), "dims": (8, 16, 24, 32)}


@pytest.mark.parametrize("name, size", CONVNEXTS.items())
def test_registered_as_cnns_on_timm_dinov3_weights(registry, name, size):
    entry = registry.get("backbone", name)
    assert entry.family == "cnn"
    assert entry.options["model_name"] == f"convnext_{size}.dinov3_lvd1689m"
    assert entry.options["model_name"] in timm.list_pretrained("convnext*dinov3*")
    assert registry.get("backbone", f"dinov3-convnext-{size}").name == name


def test_convnext_t_builds_random_and_lifts_with_every_cnn_strategy(registry):
    entry = registry.get("backbone", "convnext-t")
    model, info = entry.load()("random", **entry.options)
    model.eval()
    assert info.source == "random:0" and info.sha256 == state_dict_sha256(model)
    assert sum(len(stage.blocks) for stage in model.stages) == 18 and model.num_features == 768
    volumes = torch.randn(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(0))
    expected = {"2d": (1, 768, 32, 1, 1), "3d": (1, 768, 1, 1, 1), "acs": (1, 768, 1, 1, 1), "pcg": (1, 768, 32, 1, 1)}
    for strategy, shape in expected.items():
        lifted = liftbench.lift(model, strategy)
        try:
            with torch.no_grad():
                features = lifted(volumes)
        finally:
            lifted.unlift()
        assert tuple(features.patches.shape) == shape and torch.isfinite(features.pooled).all(), strategy


def test_offline_without_cache_says_what_to_get(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(MissingFileError) as err:
        create_timm_backbone("pretrained", model_name="convnext_tiny.dinov3_lvd1689m", **TINY)
    message = str(err.value)
    assert "\n" not in message
    for part in ("timm/convnext_tiny.dinov3_lvd1689m", "--weights PATH", "--weights random", "dinov3_*_pretrain_*.pth"):
        assert part in message


def test_missing_weights_file_names_it():
    with pytest.raises(MissingFileError, match="'/nowhere/convnext.pth' does not exist"):
        create_timm_backbone("/nowhere/convnext.pth", model_name="convnext_tiny.dinov3_lvd1689m", **TINY)


def _meta_key(key: str) -> str:
    """timm's ConvNeXt key -> the key Meta's original DINOv3 ConvNeXt checkpoint uses for it."""
    parts = key.split(".")
    if parts[0] == "stem":
        parts = ["downsample_layers", "0", *parts[1:]]
    elif parts[0] == "stages" and parts[2] == "downsample":
        parts = ["downsample_layers", parts[1], *parts[3:]]
    elif parts[0] == "stages" and parts[2] == "blocks":
        parts = ["stages", parts[1], *parts[3:]]
    elif parts[:2] == ["head", "norm"]:
        parts = parts[1:]
    return ".".join(parts).replace("conv_dw", "dwconv").replace("mlp.fc", "pwconv")


def test_metas_original_convnext_checkpoint_is_converted(tmp_path):
    """Meta's key names (downsample_layers, dwconv, pwconv1/2, norm) load through timm's checkpoint filter."""
    reference, _ = create_timm_backbone("random:3", model_name="convnext_tiny.dinov3_lvd1689m", **TINY)
    meta = {_meta_key(k): v.clone() for k, v in reference.state_dict().items()}
    assert "downsample_layers.1.1.weight" in meta and "stages.2.0.pwconv1.weight" in meta and "norm.weight" in meta
    path = tmp_path / "dinov3_convnext_tiny_pretrain_tiny.pth"
    torch.save(meta, path)
    model, info = create_timm_backbone(str(path), model_name="convnext_tiny.dinov3_lvd1689m", **TINY)
    assert info.source == str(path) and info.sha256 == state_dict_sha256(reference)
    fresh, _ = create_timm_backbone("random:4", model_name="convnext_tiny.dinov3_lvd1689m", **TINY)
    assert state_dict_sha256(fresh) != info.sha256  # the file's numbers were loaded, not an init
