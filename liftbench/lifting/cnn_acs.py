"""ACS convolutions (Yang et al., "Reinventing 2D convolutions for 3D images", 2021).

A pretrained ``Conv2d`` keeps its k×k kernels; its output channels are split into three groups —
equal thirds, the remainder going to the first groups (``c//3 + (i < c % 3)``) — and group one applies
its kernels on the axial plane (``1×k×k``), group two on the coronal plane (``k×1×k``), group three on
the sagittal plane (``k×k×1``). The outputs are concatenated along channels, then the bias is added.

Stride, padding and dilation: the two kernel axes get the 2D values; the kernel's singleton axis gets
padding 0 and dilation 1 but keeps the stride, and its output length is made equal to the 3D conv's
(``floor((n + 2p - d(k-1) - 1)/s) + 1``) exactly as the reference ``acsconv`` package does: it uses the
input as is when that already gives the right length and the 3D output is the input's length or half of
it ("same" convs, strided or not); otherwise it zero-pads the axis by ``p`` and samples the positions
``c - p + i·s`` where ``c`` is the kernel's centre tap. We take ``c = d·(k//2)``, the centre of the
*dilated* kernel; ``acsconv`` takes ``k//2`` whatever the dilation, so the two differ only for dilated
convs that take this pad-and-crop path (not "same", or odd lengths with stride 2). For odd kernels with
"same" padding — every conv of a ResNet — both rules sample positions ``i·s``, the kernel's centre, and
ACS equals a conv3d whose k×k×k kernel holds the 2D kernel in the middle of the singleton axis.
Unlike ``acsconv``, grouped convs of any group count work: each plane runs the conv groups its output
channels fall in, and keeps only its own channels.

The kernels are sliced from the ``Conv2d``'s own weight at every forward: no copy, no new parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from liftbench.lifting.cnn_volume import VolumeCNN


def acs_split(channels: int) -> tuple[int, int, int]:
    """Output channels of the axial, coronal and sagittal groups: thirds, remainder to the first ones."""
    return tuple(channels // 3 + (1 if i < channels % 3 else 0) for i in range(3))  # type: ignore[return-value]


def conv_output_length(n: int, k: int, s: int, p: int, d: int) -> int:
    """Length of a conv's output along one axis (what a full k×k×k conv3d would give)."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _singleton_axis_input(x: torch.Tensor, dim: int, k: int, s: int, p: int, d: int, out_len: int) -> torch.Tensor:
    """The input along a kernel's singleton axis, arranged so a size-1 kernel gives ``out_len`` outputs."""
    n = x.shape[dim]
    if (n - 1) // s + 1 == out_len and (out_len == n or 2 * out_len == n):
        return x
    padding = [0, 0] * (x.dim() - 2)
    padding[2 * (x.dim() - 1 - dim)] = padding[2 * (x.dim() - 1 - dim) + 1] = p
    return F.pad(x, padding).narrow(dim, d * (k // 2), (out_len - 1) * s + 1)


def acs_conv3d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
) -> torch.Tensor:
    """ACS convolution of ``x (B, C, D, H, W)`` with 2D kernels ``weight (O, C/groups, k, k)``."""
    k = weight.shape[-1]
    out_channels = weight.shape[0]
    per_group_out = out_channels // groups
    per_group_in = x.shape[1] // groups
    out_lens = [conv_output_length(n, k, stride, padding, dilation) for n in x.shape[2:]]
    outputs = []
    start = 0
    for axis, size in enumerate(acs_split(out_channels)):  # axis 0: depth is the singleton (axial) ...
        if size == 0:
            continue
        stop = start + size
        first, last = start // per_group_out, (stop - 1) // per_group_out + 1  # conv groups involved
        # Within one conv group, its own kernels; across groups, whole groups, trimmed after the conv.
        offset = start if last - first == 1 else first * per_group_out
        kernel = weight[offset : stop if last - first == 1 else last * per_group_out].unsqueeze(2 + axis)
        inputs = x[:, first * per_group_in : last * per_group_in]
        inputs = _singleton_axis_input(inputs, 2 + axis, k, stride, padding, dilation, out_lens[axis])
        pads = [padding] * 3
        dils = [dilation] * 3
        pads[axis], dils[axis] = 0, 1
        out = F.conv3d(inputs, kernel, None, stride, tuple(pads), tuple(dils), last - first)
        outputs.append(out[:, start - offset : stop - offset])
        start = stop
    out = torch.cat(outputs, dim=1)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1, 1)
    return out


def acs_conv(conv: nn.Conv2d, geometry: tuple[int, int, int, int], x: torch.Tensor) -> torch.Tensor:
    """What an ACS-lifted ``conv`` computes; ``geometry`` is ``(k, s, p, d)``."""
    _, s, p, d = geometry
    return acs_conv3d(x, conv.weight, conv.bias, s, p, d, conv.groups)


class ACSCNN(VolumeCNN):
    """The whole volume through the ACS network; pooled ``(B, F)``, patches ``(B, F, d, h, w)``."""

    strategy = "acs"
    conv_op = staticmethod(acs_conv)
