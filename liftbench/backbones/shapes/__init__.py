"""Backbones pretrained by liftbench itself, shipped with the package: no download needed.

``vit-tiny-shapes`` (timm's DINOv3 ViT class, shrunk), ``resnet-tiny-shapes`` (a narrow timm ResNet) and
``convnext-tiny-shapes`` (timm's ConvNeXt, the class of DINOv3's ConvNeXts, with the ResNet's widths) were
trained in 2D for a few minutes on CPU on generated shape images (:mod:`liftbench.backbones.shapes.images`) by
:mod:`liftbench.backbones.shapes.train`; :mod:`liftbench.backbones.shapes.models` defines the architectures and
:mod:`liftbench.backbones.shapes.load` creates them with ``pretrained``, ``random[:SEED]`` or file weights. They
give the demo and the tests a backbone whose features mean something, so that liftings can be told apart.
"""
