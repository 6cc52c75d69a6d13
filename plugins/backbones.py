"""Built-in backbones: the DINOv3 ViT family (S, S+, B, L, H+, 7B), DINOv3 ConvNeXt-T/S/B/L and ResNet-50, all
through timm.

The large ViTs (``vith+``: 0.84B parameters, ``vit7b``: 6.7B) are planned on PyTorch's meta device
(``--dry-run`` allocates no weights; :mod:`liftbench.cost.estimate`); ``benchmarks/lift_7b.py`` lifts a random 7B.

The ConvNeXts are the ones Meta distilled from DINOv3's ViT-7B on LVD-1689M (timm
``convnext_{tiny,small,base,large}.dinov3_lvd1689m``): the "cnn" family, so every CNN strategy lifts them.
``--weights PATH`` also takes Meta's original ``dinov3_convnext_*_pretrain_lvd1689m-*.pth``: timm's ConvNeXt
``checkpoint_filter_fn`` renames its keys (``downsample_layers`` -> ``stem``/``stages.i.downsample``,
``dwconv`` -> ``conv_dw``, ``pwconv1/2`` -> ``mlp.fc1/2``, ``norm`` -> ``head.norm``) when it loads the file.
"""

from liftbench import hookimpl

_CREATE = "liftbench.backbones.timm_backbones:create_timm_backbone"
_LOCATE = "liftbench.backbones.timm_backbones:locate_timm_weights"


@hookimpl
def liftbench_register_backbones(registrar):
    for name, size in (("vits", "small"), ("vitb", "base"), ("vitl", "large")):
        model = f"vit_{size}_patch16_dinov3"
        registrar.add(
            name,
            _CREATE,
            family="vit",
            aliases=(model, f"dinov3-{name}16"),
            description=f"DINOv3 ViT-{name[-1].upper()}/16 (timm {model}, CLS token)",
            options={"model_name": model, "global_pool": "token"},
            locate=_LOCATE,
        )
    for name, size in (("convnext-t", "tiny"), ("convnext-s", "small"), ("convnext-b", "base"), ("convnext-l", "large")):
        model = f"convnext_{size}.dinov3_lvd1689m"
        registrar.add(
            name,
            _CREATE,
            family="cnn",
            aliases=(f"dinov3-convnext-{size}",),
            description=f"DINOv3 ConvNeXt-{name[-1].upper()} (timm {model}, distilled from ViT-7B)",
            options={"model_name": model},
            locate=_LOCATE,
        )
    for name, model, label in (("vits+", "vit_small_plus_patch16_dinov3", "S+"),
                               ("vith+", "vit_huge_plus_patch16_dinov3", "H+"),
                               ("vit7b", "vit_7b_patch16_dinov3", "7B")):  # fmt: skip
        registrar.add(
            name,
            _CREATE,
            family="vit",
            aliases=(model, f"dinov3-{name.replace('+', 'plus')}16"),
            description=f"DINOv3 ViT-{label}/16 (timm {model}, CLS token; SwiGLU MLP)",
            options={"model_name": model, "global_pool": "token"},
            locate=_LOCATE,
        )
    registrar.add(
        "resnet50",
        _CREATE,
        family="cnn",
        aliases=("r50",),
        description="ResNet-50 (timm resnet50)",
        options={"model_name": "resnet50"},
        locate=_LOCATE,
    )
