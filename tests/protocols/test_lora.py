"""LoRA on lifted backbones (``lora``, ``table2-lora``): peft's adapters act on every plane, only adapters and head
train, the counts are peft's, merged adapters compute what unmerged ones do, converting liftings are refused."""

from __future__ import annotations

import json

import pytest
import torch
from cli_args import TINY_SYNTHETIC
from protocol_runs import recording_context

from liftbench.api import lift_with
from liftbench.cli import main
from liftbench.errors import UsageError
from liftbench.protocols import lora
from liftbench.protocols.adapters import attach_lora, merge_into_weights, resolve_targets
from liftbench.run.results import read_results

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _expected_count(model: torch.nn.Module, paths: list[str], rank: int) -> int:
    """LoRA's size from the layers' shapes alone: r·(in + out) per Linear, r·(in·k·k + out) per Conv2d."""
    modules = dict(model.named_modules())
    total = 0
    for path in paths:
        layer = modules[path]
        if isinstance(layer, torch.nn.Linear):
            total += rank * (layer.in_features + layer.out_features)
        else:
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += rank * (layer.in_channels * k + layer.out_channels)
    return total


@pytest.mark.parametrize("backbone, strategy", [("tiny-vit", "pcg"), ("tiny-cnn", "pcg"), ("tiny-cnn", "2d")])
def test_lora_trains_adapters_and_head_only_with_peft_s_count(registry, tmp_path, backbone, strategy):
    ctx = recording_context(registry, tmp_path, "lora", backbone=backbone, strategy=strategy, lora_rank=4, lr=1e-2)
    result = lora.run(ctx)
    (model, initial), = ctx.fresh
    notes = result.notes
    adapted = [path[: -len(".base_layer")] for path, _ in model.named_modules() if path.endswith(".base_layer")]
    assert notes["lora_rank"] == 4 and notes["lora_layers"] == len(adapted) > 0
    assert notes["trainable_backbone_parameters"] == _expected_count(model, [f"{p}.base_layer" for p in adapted], 4)
    assert notes["lora_targets"] == "qkv,proj,fc1,fc2" if backbone == "tiny-vit" else "conv1" in notes["lora_targets"].split(",")
    # every pretrained parameter is where it was (BatchNorm statistics do move in train mode, as in finetune);
    # the adapters' B (zero at start) moved
    state = model.state_dict()
    frozen = [name for name, param in model.named_parameters() if "lora_" not in name]
    assert len(frozen) == len([n for n, _ in model.named_parameters()]) - 2 * len(adapted)
    for name in frozen:
        assert torch.equal(state[name], initial[name.replace(".base_layer.", ".")]), name
        assert not dict(model.named_parameters())[name].requires_grad
    assert any(state[f"{p}.lora_B.default.weight"].abs().sum() > 0 for p in adapted)
    assert set(result.notes) >= {"lora_alpha", "lora_dropout", "backbone_parameters", "trainable_parameters"}


def test_table2_lora_takes_table2_s_recipe(registry, tmp_path):
    ctx = recording_context(registry, tmp_path, "table2-lora", strategy="2d", epochs=2, warmup_epochs=1, merge_eval=True)
    notes = lora.run(ctx).notes
    assert (notes["lr_schedule"], notes["selection"], notes["padding"], notes["rope_rescale"]) == ("epochs", "last-best", "reflect", 2.0)
    assert notes["lora_rank"] == 8 and notes["merge_eval"] and notes["trainable_backbone_parameters"] > 0


def _vit_and_volume(dinov3):
    import copy

    model = copy.deepcopy(dinov3)
    volume = torch.randn(1, 1, 16, 32, 32, generator=torch.Generator().manual_seed(3))
    return model, volume


def _draw_b(attachment, seed: int = 0) -> None:
    """Give every adapter a non-zero B (peft starts it at zero: merged and unmerged would agree trivially)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in attachment.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)


@pytest.mark.parametrize("strategy", ["2d", "pcg", "3d"])
def test_merged_adapters_give_the_unmerged_features(registry, dinov3, strategy):
    model, volume = _vit_and_volume(dinov3)
    with torch.no_grad():
        base = lift_with(registry, model, strategy)(volume).pooled
    torch.manual_seed(0)
    attachment = attach_lora(model, "vit", rank=4, alpha=8.0)
    _draw_b(attachment)
    lifted = lift_with(registry, model, strategy).eval()
    with torch.no_grad():
        unmerged = lifted(volume).pooled
        with attachment.merged():
            merged = lifted(volume).pooled
        # the mutation partner: merging with twice the scale
        for module in model.modules():
            if hasattr(module, "scaling") and "default" in getattr(module, "scaling", {}):
                module.scaling["default"] *= 2
        with attachment.merged():
            wrong = lifted(volume).pooled
        for module in model.modules():
            if hasattr(module, "scaling") and "default" in getattr(module, "scaling", {}):
                module.scaling["default"] /= 2
        again = lifted(volume).pooled
    lifted.unlift()
    adapter_effect = (unmerged - base).abs().max().item()
    assert adapter_effect > 1e-2  # the adapters change the features, so agreement below means something
    assert (merged - unmerged).abs().max().item() < 1e-4
    assert (wrong - unmerged).abs().max().item() > 100 * 1e-4
    assert torch.allclose(again, unmerged, atol=1e-5)  # unmerging restores the adapted model
    folded = merge_into_weights(attachment)  # peft's merge_and_unload: the plain timm structure again
    assert not any("lora" in name for name, _ in folded.named_parameters())
    with torch.no_grad():
        assert (lift_with(registry, folded, strategy)(volume).pooled - unmerged).abs().max().item() < 1e-4


def test_targets_are_checked_against_the_backbone(dinov3):
    import copy

    model = copy.deepcopy(dinov3)
    assert [p.rsplit(".", 1)[-1] for p in resolve_targets(model, "vit", "qkv,fc2")][:2] == ["qkv", "fc2"]
    with pytest.raises(UsageError, match=r"no Linear layer named 'qkvx'.*valid: auto, fc1, fc2, proj, qkv"):
        resolve_targets(model, "vit", "qkv,qkvx")


def test_bad_lora_options_are_one_line_usage_errors(tmp_path, capsys):
    base = ["run", "--backbones", "vit-tiny-shapes", "--strategies", "2d", "--protocol", "lora", "--weights", "random",
            "--results", str(tmp_path / "r"), "--dry-run"]  # fmt: skip
    assert main([*base, "--lora-rank", "0"]) == 2
    assert "lora_rank" in capsys.readouterr().err
    assert main([*base, "--lora-targets", "qkv;proj"]) == 2
    assert "comma list of layer names" in capsys.readouterr().err


def test_lora_runs_end_to_end_and_refuses_converting_liftings(tmp_path, capsys):
    out = tmp_path / "study"
    args = ["run", "--datasets", "synthetic", "--backbones", "vit-tiny-shapes,resnet-tiny-shapes", "--strategies",
            "2d,pcg,acs", "--protocol", "lora", "--weights", "random", "--quick", "--iterations", "4", "--warmup", "1",
            "--batch-size", "2", "--results", str(out), "--no-leaderboard", *TINY_SYNTHETIC]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    frame = read_results(out).frame.drop_duplicates("run_key")
    ok = frame[frame["status"] == "ok"]
    assert set(zip(ok["backbone"], ok["strategy"], strict=True)) == {(b, s) for b in ("vit-tiny-shapes", "resnet-tiny-shapes") for s in ("2d", "pcg")}
    for _, row in ok.iterrows():
        notes = json.loads(row["notes"])
        assert notes["lora_rank"] == 8 and notes["trainable_backbone_parameters"] > 0
        assert notes["lora_targets"] == ("qkv,proj,fc1,fc2" if row["backbone"] == "vit-tiny-shapes" else "conv1,conv2,downsample.0")
    refused = frame[(frame["backbone"] == "resnet-tiny-shapes") & (frame["strategy"] == "acs")]
    assert (refused["status"] == "skipped").all() and refused["error"].str.contains("low-rank update of the ACS conv").all()


def test_bench_train_measures_full_fine_tuning_and_lora_at_the_same_settings(tmp_path, capsys):
    frames = {}
    for label, extra in (("full", []), ("lora", ["--lora", "4"])):
        out = tmp_path / label
        args = ["bench", "--train", *extra, "--backbones", "vit-tiny-shapes", "--strategies", "pcg", "--sizes", "16",
                "--repeats", "1", "--warmup", "0", "--results", str(out)]  # fmt: skip
        assert main(args) == 0, capsys.readouterr().err
        frame = read_results(out).frame
        frames[label] = frame[frame["status"] == "ok"].set_index("metric")["value"]
    full, adapted = frames["full"], frames["lora"]
    from liftbench.plugin.manager import default_registry

    entry = default_registry().get("backbone", "vit-tiny-shapes")
    model, _ = entry.load()("random", **entry.options)
    linears = [path for path, m in model.named_modules() if isinstance(m, torch.nn.Linear) and path.startswith("blocks.")]
    assert adapted["trainable_parameters"] == _expected_count(model, linears, 4)
    assert adapted["optimizer_state_mb"] == pytest.approx(2 * 4 * adapted["trainable_parameters"] / 2**20)
    assert full["optimizer_state_mb"] == pytest.approx(2 * 4 * full["trainable_parameters"] / 2**20)
    assert full["trainable_parameters"] > 10 * adapted["trainable_parameters"]
    assert set(read_results(tmp_path / "lora").frame["protocol"]) == {"bench-train-lora"}
    assert main(["bench", "--lora", "4", "--results", str(tmp_path / "x")]) == 2
    assert "add --train" in capsys.readouterr().err
