"""Built-in backbones pretrained by liftbench itself, shipped with the package: no download.

All three were trained for a few minutes on CPU on generated 2D shape images (``liftbench.backbones.shapes``) and are
small enough for the demo and the tests: ``vit-tiny-shapes`` (timm's DINOv3 ViT class, 4 blocks,
width 128 in heads of 64, patch 8, CLS + 4 registers, RoPE), ``resnet-tiny-shapes`` (timm ResNet,
BasicBlocks [1, 1, 1, 1], channels 16-128) and ``convnext-tiny-shapes`` (timm's ConvNeXt, the class of
DINOv3's ConvNeXts: depths [1, 1, 2, 1], channels 16-128, patch-4 stem). ``--weights random[:SEED]`` gives their untrained init
(seed 0 is the one training started from); ``python -m liftbench.backbones.shapes.train`` regenerates the weights.
"""

from liftbench import hookimpl

_CREATE = "liftbench.backbones.shapes.load:create"
_LOCATE = "liftbench.backbones.shapes.load:locate"


@hookimpl
def liftbench_register_backbones(registrar):
    registrar.add(
        "vit-tiny-shapes",
        _CREATE,
        family="vit",
        aliases=("vitt-shapes",),
        description="tiny DINOv3-style ViT (4 blocks, width 128, patch 8), pretrained by liftbench on 32x32 shapes; shipped",
        options={"model_name": "vit-tiny-shapes"},
        locate=_LOCATE,
    )
    registrar.add(
        "resnet-tiny-shapes",
        _CREATE,
        family="cnn",
        aliases=("r-shapes",),
        description="tiny ResNet (BasicBlock [1,1,1,1], channels 16-128), pretrained by liftbench on 32x32 shapes; shipped",
        options={"model_name": "resnet-tiny-shapes"},
        locate=_LOCATE,
    )
    registrar.add(
        "convnext-tiny-shapes",
        _CREATE,
        family="cnn",
        aliases=("cnx-shapes",),
        description="tiny ConvNeXt (depths [1,1,2,1], channels 16-128, patch-4 stem), pretrained by liftbench on 32x32 shapes; shipped",
        options={"model_name": "convnext-tiny-shapes"},
        locate=_LOCATE,
    )
