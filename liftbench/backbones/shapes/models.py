"""The three shapes architectures, built from timm with fixed arguments.

* ``vit-tiny-shapes`` — timm's DINOv3 ViT (:class:`timm.models.eva.Eva`: CLS + 4 register tokens,
  DINOv3 RoPE, LayerScale, no absolute positions) shrunk to 32² images: patch 8 (a 4×4 token grid),
  width 128 in 2 heads of 64 (the head size flatten-3D's 3D RoPE sections (8, 12, 12) are made for),
  4 blocks (so the PlaneCycle schedule HW,DW,DH,HW runs once through them), MLP ratio 1.5; CLS pooling.
  LayerScale starts at 0.1, not DINOv3's 1e-5, so that a short training makes every block count.
* ``resnet-tiny-shapes`` — timm's ResNet with BasicBlocks, one block per stage, channels
  (16, 32, 64, 128) and a 16-channel stem; average pooling.
* ``convnext-tiny-shapes`` — timm's ConvNeXt (the class of DINOv3's ConvNeXt-T/S/B/L: channels-last
  blocks, 7×7 depthwise conv, LayerNorm, MLP ratio 4, LayerScale) with depths (1, 1, 2, 1) and the
  ResNet's channels (16, 32, 64, 128); its patch-4 stem gives the ResNet's 8×8 first stage at 32², and
  both end on a 1×1 map. Average pooling then the head's LayerNorm, as timm's ConvNeXt pools. LayerScale
  starts at 0.1, not timm's 1e-6, for the reason the ViT's does.

All are built without a classifier (``num_classes=0``: the model returns its pooled feature) unless
the training script asks for one, take 3-channel input (liftbench repeats grayscale to 3 channels) and
carry a ``pretrained_cfg`` whose mean/std are the normalisation they were trained with, so
:func:`liftbench.backbones.timm_backbones.normalisation` returns those.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

IMAGE_SIZE = 32
# Mean/std of the generated training images (liftbench.backbones.shapes.images), per channel.
MEAN = (0.28, 0.28, 0.28)
STD = (0.14, 0.14, 0.14)

VIT_KWARGS = {
    "img_size": IMAGE_SIZE,
    "patch_size": 8,
    "embed_dim": 128,
    "depth": 4,
    "num_heads": 2,
    "mlp_ratio": 1.5,
    "init_values": 0.1,
    "global_pool": "token",
}
CONVNEXT_KWARGS = {
    "depths": (1, 1, 2, 1),
    "dims": (16, 32, 64, 128),
    "patch_size": 4,
    "kernel_sizes": 7,
    "ls_init_value": 0.1,
    "global_pool": "avg",
}
RESNET_KWARGS = {
    "layers": (1, 1, 1, 1),
    "channels": (16, 32, 64, 128),
    "stem_width": 16,
    "global_pool": "avg",
}


def _cfg(name: str, first_conv: str, classifier: str) -> dict:
    """A pretrained_cfg of our own: no hub id or URL of a real ImageNet model, our mean/std."""
    return {
        "architecture": name,
        "tag": "shapes",
        "input_size": (3, IMAGE_SIZE, IMAGE_SIZE),
        "mean": MEAN,
        "std": STD,
        "num_classes": 0,
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "first_conv": first_conv,
        "classifier": classifier,
        "license": "apache-2.0",
    }


def vit_tiny_shapes(num_classes: int = 0) -> nn.Module:
    """The ``vit-tiny-shapes`` architecture (random init in the caller's RNG state)."""
    import timm

    return timm.create_model(
        "vit_small_patch16_dinov3",
        pretrained=False,
        pretrained_cfg=_cfg("vit-tiny-shapes", "patch_embed.proj", "head"),
        num_classes=num_classes,
        **VIT_KWARGS,
    )


def resnet_tiny_shapes(num_classes: int = 0) -> nn.Module:
    """The ``resnet-tiny-shapes`` architecture (random init in the caller's RNG state)."""
    import timm

    return timm.create_model(
        "resnet18",
        pretrained=False,
        pretrained_cfg=_cfg("resnet-tiny-shapes", "conv1", "fc"),
        num_classes=num_classes,
        **RESNET_KWARGS,
    )


def convnext_tiny_shapes(num_classes: int = 0) -> nn.Module:
    """The ``convnext-tiny-shapes`` architecture (random init in the caller's RNG state)."""
    import timm

    return timm.create_model(
        "convnext_tiny",
        pretrained=False,
        pretrained_cfg=_cfg("convnext-tiny-shapes", "stem.0", "head.fc"),
        num_classes=num_classes,
        **CONVNEXT_KWARGS,
    )


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "vit-tiny-shapes": vit_tiny_shapes,
    "resnet-tiny-shapes": resnet_tiny_shapes,
    "convnext-tiny-shapes": convnext_tiny_shapes,
}
