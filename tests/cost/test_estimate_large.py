"""Planning large backbones on the meta device: the DINOv3 family to 7B is registered, its memory plan (inference,
fine-tune, LoRA) is computed without allocating weights, and its calibration runs on a small stand-in."""

from __future__ import annotations

import resource

import pytest
import torch

from liftbench.cost.estimate import calibration_options, parameter_count
from liftbench.cost.estimate_memory import lora_parameter_count, plan_memory
from liftbench.protocols.adapters import attach_lora


def test_the_dinov3_family_is_registered(registry):
    for name, model in (("vits+", "vit_small_plus_patch16_dinov3"), ("vith+", "vit_huge_plus_patch16_dinov3"),
                        ("vit7b", "vit_7b_patch16_dinov3")):  # fmt: skip
        entry = registry.get("backbone", name)
        assert entry.family == "vit" and entry.options == {"model_name": model, "global_pool": "token"}
        assert registry.get("backbone", model).name == name


def test_planning_a_7b_allocates_no_weights(registry):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    plan = plan_memory(registry, "vit7b", "pcg", "HW,DW,DH,HW", 32, 32)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    assert grown < 300  # 6.7B parameters would be 13 GB in bf16
    assert 6.7e9 < plan.parameters == parameter_count(registry, "vit7b") < 6.8e9
    # fine-tuning holds 16 B per parameter; LoRA the bf16 frozen weights and 16 B per adapter parameter
    assert plan.finetune_mb > 16 * plan.parameters / 2**20 > plan.lora_mb > 2 * plan.parameters / 2**20
    assert plan.inference_mb > 2 * plan.parameters / 2**20 and plan.checkpointed
    assert calibration_options(registry, "vit7b") == {"model_name": "vit_7b_patch16_dinov3", "global_pool": "token",
                                                       "depth": 1, "embed_dim": 1024, "num_heads": 8}  # fmt: skip
    assert calibration_options(registry, "vits") == dict(registry.get("backbone", "vits").options)


@pytest.mark.parametrize("backbone, family", [("tiny-vit", "vit"), ("tiny-cnn", "cnn")])
def test_the_planned_lora_count_is_peft_s(registry, backbone, family):
    entry = registry.get("backbone", backbone)
    with torch.device("meta"):
        meta, _ = entry.load()("random", **entry.options)
    planned = lora_parameter_count(meta, family)
    model, _ = entry.load()("random", **entry.options)
    assert planned == attach_lora(model, family, rank=8, alpha=16.0).trainable_count() > 0
    plan = plan_memory(registry, backbone, "2d", "", 32, 4)
    assert plan.lora_parameters == planned and plan.parameters == sum(p.numel() for p in meta.parameters())
