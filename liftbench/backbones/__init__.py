"""Backbones: timm models with offline weight rules (``timm_backbones``), streamed checkpoints
(``stream_weights``), and liftbench's own shape-pretrained models (``shapes``)."""


def __getattr__(name: str):
    # liftbench.backbones was one module before 0.2: its names still resolve, with a DeprecationWarning.
    from liftbench.moved import forward

    return forward(__name__, "liftbench.backbones.timm_backbones", name)
