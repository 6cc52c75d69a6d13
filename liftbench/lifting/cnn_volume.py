"""Make a 2D CNN's trunk act on 5D volumes: shared by the inflated-3D and ACS liftings.

Both strategies differ only in what a ``Conv2d`` becomes; norm and pooling layers become their 3D
counterparts with the same parameters (docs/strategies.md, "Inflated 3D"). Everything is decided per layer, by
type, with an explicit allow-list, because a layer that silently does the 2D thing on a 5D tensor (say
``x.mean((2, 3))`` in a squeeze-excite block) would give a wrong result without any error:

* converted: exact ``nn.Conv2d`` (by the strategy), ``nn.BatchNorm2d`` / timm ``BatchNormAct2d``,
  ``nn.MaxPool2d``, ``nn.AvgPool2d``, global ``nn.Adaptive{Avg,Max}Pool2d``, timm
  ``SelectAdaptivePool2d`` and ``LayerNorm2d``;
* left alone: element-wise layers (activations, dropout, ``DropPath``, ``Identity``) and containers whose
  own ``forward`` only chains children and adds tensors (``Sequential``, ResNet and MobileNet/EfficientNet
  blocks, ConvNeXt stages);
* ConvNeXt blocks: run by :func:`cnn_convnext.convnext_block` (their channels-last LayerNorm and MLP act on
  every voxel's channels), their depthwise convs converted by the strategy;
* anything else in the trunk (``Conv2d`` subclasses such as ``Conv2dSame``, squeeze-excite, ``Linear`` ...)
  refuses the lifting with a :class:`CannotLiftError` naming its path and type.

All or nothing: every layer is checked (and its patch planned) before any is patched, so a model that cannot
be lifted is left exactly as it was. The head — the children a known model's ``forward_features`` never
runs (classifier, head pooling and norm) — is neither checked nor patched: it never sees a volume.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from liftbench.errors import CannotLiftError, UsageError
from liftbench.lifting import cnn_convnext
from liftbench.lifting.base import Lifted, check_options
from liftbench.lifting.cnn_layers import Patcher, check_trunk, ensure_unpatched, run_trunk, volume_features
from liftbench.lifting.features import Features

ConvForward = Callable[[nn.Conv2d, tuple[int, int, int, int], torch.Tensor], torch.Tensor]

# Model classes whose forward_features (or, for torchvision, the children run by run_trunk) only chains
# children: anything 4D-specific they contain is a child, checked below. Each maps to its head: the children
# the trunk never runs (forward_head's), left alone.
KNOWN_ROOTS = {
    "timm.models.resnet.ResNet": ("global_pool", "fc"),
    "timm.models.efficientnet.EfficientNet": ("global_pool", "classifier"),
    "timm.models.mobilenetv3.MobileNetV3": ("global_pool", "conv_head", "norm_head", "act2", "flatten", "classifier"),
    "timm.models.convnext.ConvNeXt": ("head",),
    "torchvision.models.resnet.ResNet": ("avgpool", "fc"),
}
# Containers whose own forward is dimension-agnostic (checked against timm 1.0 / torchvision 0.2x source).
AGNOSTIC_CONTAINERS = {
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.container.ModuleDict",
    "timm.models.resnet.BasicBlock",
    "timm.models.resnet.Bottleneck",
    "timm.models._efficientnet_blocks.DepthwiseSeparableConv",
    "timm.models._efficientnet_blocks.InvertedResidual",
    "timm.models._efficientnet_blocks.EdgeResidual",
    "timm.models._efficientnet_blocks.ConvBnAct",
    "timm.models.convnext.ConvNeXtStage",
    "timm.layers.mlp.ConvMlp",
    "timm.layers.mlp.Mlp",  # Conv2d children (conv_mlp ConvNeXt) are converted; Linear ones refused here
    "torchvision.models.resnet.BasicBlock",
    "torchvision.models.resnet.Bottleneck",
}
AGNOSTIC_LEAVES = {
    "torch.nn.modules.linear.Identity",
    "torch.nn.modules.dropout.Dropout",
    "torch.nn.modules.dropout.AlphaDropout",
    "timm.layers.drop.DropPath",
}
_NOT_ELEMENTWISE = {"MultiheadAttention", "Softmax", "Softmin", "LogSoftmax", "Softmax2d"}


def _qualname(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__name__}"


def _is_elementwise(module: nn.Module) -> bool:
    """Activations act value by value (``PReLU`` per channel, dim 1): they work on any rank."""
    mod, name = type(module).__module__, type(module).__name__
    if name in _NOT_ELEMENTWISE:
        return False
    return mod == "torch.nn.modules.activation" or mod.startswith("timm.layers.activations")


def square(value, what: str, path: str, module: nn.Module) -> int:
    """One int for an ``int`` or a tuple of equal ints; a non-square kernel/stride/... cannot be tripled."""
    if isinstance(value, int):
        return value
    values = tuple(value)
    if len(set(values)) != 1:
        raise CannotLiftError(
            f"layer {path!r} ({type(module).__name__}) has a non-square {what} {values}; cannot lift to 3D"
        )
    return int(values[0])


def conv_geometry(conv: nn.Conv2d, path: str) -> tuple[int, int, int, int]:
    """``(kernel, stride, padding, dilation)`` of a square, zero-padded ``Conv2d``, else a clear error."""
    if conv.padding_mode != "zeros":
        raise CannotLiftError(
            f"layer {path!r} (Conv2d) uses padding_mode={conv.padding_mode!r}; only 'zeros' is lifted"
        )
    k = square(conv.kernel_size, "kernel", path, conv)
    s = square(conv.stride, "stride", path, conv)
    d = square(conv.dilation, "dilation", path, conv)
    if conv.padding == "valid":
        p = 0
    elif conv.padding == "same":
        if (d * (k - 1)) % 2:
            raise CannotLiftError(f"layer {path!r} (Conv2d) has asymmetric 'same' padding; cannot lift to 3D")
        p = d * (k - 1) // 2
    else:
        p = square(conv.padding, "padding", path, conv)
    return k, s, p, d


def batch_norm_5d(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``BatchNorm2d.forward`` without its 4D check: same running stats, momentum and mode handling."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch_stats = bn.training or (bn.running_mean is None and bn.running_var is None)
    track = not bn.training or bn.track_running_stats
    x = F.batch_norm(
        x,
        bn.running_mean if track else None,
        bn.running_var if track else None,
        bn.weight,
        bn.bias,
        use_batch_stats,
        factor,
        bn.eps,
    )
    if hasattr(bn, "act"):  # timm BatchNormAct2d: norm, then its (element-wise) drop and act
        x = bn.act(bn.drop(x))
    return x


def max_pool_3d(pool: nn.MaxPool2d, geometry: tuple[int, int, int, int], x: torch.Tensor) -> torch.Tensor:
    k, s, p, d = geometry
    return F.max_pool3d(x, k, s, p, d, ceil_mode=pool.ceil_mode)


def avg_pool_3d(pool: nn.AvgPool2d, geometry: tuple[int, int, int, int], x: torch.Tensor) -> torch.Tensor:
    k, s, p, _ = geometry
    return F.avg_pool3d(x, k, s, p, pool.ceil_mode, pool.count_include_pad, pool.divisor_override)


def global_pool_3d(module: nn.Module, kind: str, flatten: bool, x: torch.Tensor) -> torch.Tensor:
    """Global average (or max) over depth, height and width, keeping dims unless the layer flattens."""
    if kind == "avg":
        x = x.mean(dim=(2, 3, 4), keepdim=True)
    elif kind == "max":
        x = x.amax(dim=(2, 3, 4), keepdim=True)
    return x.flatten(1) if flatten else x


def layer_norm_channels_5d(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """timm ``LayerNorm2d``: layer norm over channels at every voxel."""
    x = F.layer_norm(x.movedim(1, -1), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
    return x.movedim(-1, 1)


def refusal(module: nn.Module, path: str, strategy: str) -> CannotLiftError:
    """The error for a trunk layer no rule covers: raised at lift time, before anything is patched."""
    return CannotLiftError(
        f"strategy {strategy!r} cannot run layer {path!r} ({_qualname(module)}) on volumes: it is not known to "
        "work on 5D tensors (only Conv2d, BatchNorm2d, 2D pooling, LayerNorm2d, element-wise layers, ConvNeXt "
        "blocks and known containers are lifted)"
    )


def _pool_geometry(pool: nn.Module, path: str) -> tuple[int, int, int, int]:
    if getattr(pool, "return_indices", False):
        raise CannotLiftError(f"layer {path!r} ({type(pool).__name__}) returns indices; cannot lift to 3D")
    k = square(pool.kernel_size, "kernel", path, pool)
    s = k if pool.stride is None else square(pool.stride, "stride", path, pool)
    p = square(pool.padding, "padding", path, pool)
    d = square(getattr(pool, "dilation", 1), "dilation", path, pool)
    return k, s, p, d


def _select_pool_kind(module: nn.Module, path: str) -> tuple[str, bool]:
    kind = module.pool_type or "identity"
    if kind not in ("avg", "max", "identity"):
        raise CannotLiftError(f"layer {path!r} (SelectAdaptivePool2d) pools by {kind!r}; only avg/max are lifted")
    flatten = isinstance(module.flatten, nn.Flatten) or getattr(module.pool, "flatten", False) is True
    return kind, flatten


def _is_global(output_size) -> bool:
    return output_size in (1, (1, 1), [1, 1])


Plan = list[tuple[nn.Module, Callable[..., torch.Tensor], tuple]]


def _plan_layer(module: nn.Module, path: str, strategy: str, conv: ConvForward, plan: Plan) -> bool:
    """Plan the patch of one layer that is converted as a whole; False when it is not one of those."""
    kind = type(module)
    name = _qualname(module)
    if kind is nn.Conv2d:
        plan.append((module, conv, (conv_geometry(module, path),)))
    elif kind is nn.BatchNorm2d or name == "timm.layers.norm_act.BatchNormAct2d":
        for child_path, child in module.named_children():
            if not (_is_elementwise(child) or _qualname(child) in AGNOSTIC_LEAVES):
                raise refusal(child, f"{path}.{child_path}", strategy)
        plan.append((module, batch_norm_5d, ()))
    elif kind is nn.MaxPool2d:
        plan.append((module, max_pool_3d, (_pool_geometry(module, path),)))
    elif kind is nn.AvgPool2d:
        plan.append((module, avg_pool_3d, (_pool_geometry(module, path),)))
    elif kind in (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d) and _is_global(module.output_size):
        plan.append((module, global_pool_3d, ("avg" if kind is nn.AdaptiveAvgPool2d else "max", False)))
    elif name == "timm.layers.adaptive_avgmax_pool.SelectAdaptivePool2d":
        plan.append((module, global_pool_3d, _select_pool_kind(module, path)))
    elif name == "timm.layers.norm.LayerNorm2d":
        plan.append((module, layer_norm_channels_5d, ()))
    else:
        return False
    return True


def patch_for_volumes(model: nn.Module, strategy: str, conv: ConvForward) -> Patcher:
    """Patch every layer of ``model`` so its trunk runs on ``(B, C, D, H, W)``; see the module docstring.

    ``conv(conv2d, (k, s, p, d), x)`` is the strategy's 3D version of a ``Conv2d``. Returns the
    :class:`Patcher` that undoes it all. Every layer is checked first: a problem (non-square kernel, unknown
    layer or model class) raises :class:`CannotLiftError` before anything is patched.
    """
    root = _qualname(model)
    if root not in KNOWN_ROOTS:
        raise CannotLiftError(
            f"strategy {strategy!r} does not know whether {root} runs its features on 5D tensors; "
            f"supported models: {', '.join(sorted(KNOWN_ROOTS))}"
        )
    plan: Plan = []
    head = KNOWN_ROOTS[root]
    for name, child in model.named_children():
        if name not in head:
            _visit_one(child, name, strategy, conv, plan)
    patcher = Patcher()
    try:
        for module, fn, args in plan:
            patcher.patch(module, fn, *args)
    except BaseException:
        patcher.restore()
        raise
    return patcher


def _visit(module: nn.Module, prefix: str, strategy: str, conv: ConvForward, plan: Plan, channels_last=False) -> None:
    for name, child in module.named_children():
        _visit_one(child, f"{prefix}.{name}" if prefix else name, strategy, conv, plan, channels_last)


def _visit_one(child: nn.Module, path: str, strategy: str, conv: ConvForward, plan: Plan, channels_last=False) -> None:
    """Plan ``child``'s patch (and its children's) or refuse it; ``channels_last``: inside a ConvNeXt block's
    channels-last part, where only layers acting on the last axis are allowed."""
    qual = _qualname(child)
    if _is_elementwise(child) or qual in AGNOSTIC_LEAVES:
        return
    if channels_last:
        if qual in cnn_convnext.CHANNELS_LAST_CONTAINERS:
            _visit(child, path, strategy, conv, plan, channels_last=True)
        elif qual not in cnn_convnext.CHANNELS_LAST_LEAVES:
            raise refusal(child, path, strategy)
        return
    if _plan_layer(child, path, strategy, conv, plan):
        return
    if qual in AGNOSTIC_CONTAINERS:
        _visit(child, path, strategy, conv, plan)
    elif qual == cnn_convnext.BLOCK:
        cnn_convnext.check_block(child, path)
        plan.append((child, cnn_convnext.convnext_block, ()))
        for name, part in child.named_children():
            last = name in ("norm", "mlp") and not child.use_conv_mlp
            _visit_one(part, f"{path}.{name}", strategy, conv, plan, channels_last=last)
    else:
        raise refusal(child, path, strategy)


class VolumeCNN(Lifted):
    """A CNN whose whole trunk runs on the volume, its ``Conv2d`` layers computing :attr:`conv_op`.

    Subclasses (inflated 3D, ACS) set ``strategy`` and ``conv_op``; the result is pooled ``(B, F)`` and
    patches ``(B, F, d, h, w)``.
    """

    conv_op: ConvForward

    def __init__(self, model: nn.Module, **options) -> None:
        check_options(self.strategy, options, ())
        super().__init__(model)
        check_trunk(model)
        ensure_unpatched(model)
        self._patcher = patch_for_volumes(model, self.strategy, type(self).conv_op)
        self._lifted = True

    def forward(self, volumes: torch.Tensor) -> Features:
        if not self._lifted:
            raise UsageError("this lifted model was unlifted; lift the 2D model again")
        return volume_features(run_trunk(self.model, self.match_channels(volumes)))

    def unlift(self) -> nn.Module:
        self._patcher.restore()
        self._lifted = False
        return self.model
