"""Backbones pretrained by liftbench itself, shipped with the package: no download needed.

``vit-tiny-shapes`` (timm's DINOv3 ViT class, shrunk) and ``resnet-tiny-shapes`` (a narrow timm ResNet)
were trained in 2D for a few minutes on CPU on generated shape images (:mod:`liftbench.backbones.shapes.images`)
by :mod:`liftbench.backbones.shapes.train`; :mod:`liftbench.backbones.shapes.models` defines the architectures and
:mod:`liftbench.backbones.shapes.load` creates them with ``pretrained``, ``random[:SEED]`` or file weights. They
give the demo and the tests a backbone whose features mean something, so that liftings can be told apart.
"""
