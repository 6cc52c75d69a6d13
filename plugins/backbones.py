"""Built-in backbones: DINOv3 ViT-S/B/L and ResNet-50, all through timm."""

from liftbench import hookimpl

_CREATE = "liftbench.backbones:create_timm_backbone"
_LOCATE = "liftbench.backbones:locate_timm_weights"


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
    registrar.add(
        "resnet50",
        _CREATE,
        family="cnn",
        aliases=("r50",),
        description="ResNet-50 (timm resnet50)",
        options={"model_name": "resnet50"},
        locate=_LOCATE,
    )
