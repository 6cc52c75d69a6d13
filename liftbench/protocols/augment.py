"""The PlaneCycle paper's probe augmentation, on volume batches ``(B, C, D, H, W)``.

Per sample, drawn from a ``torch.Generator`` (so a seed gives the same augmentation every time), in
this order:

1. **random crop with padding 4** — on the axial plane: H and W are padded by 4 on each side and
   a random ``H × W`` window is cropped back (the same window for every slice of the volume; depth is
   neither padded nor cropped). ``pad_mode="zeros"`` (liftbench's default) pads with zero intensity, so
   apply this to raw ``[0, 1]`` volumes *before* normalisation (:func:`liftbench.datasets.volumes.prepare_batch`), as
   an image pipeline pads black; ``pad_mode="reflect"`` mirrors the border without repeating it
   (``torch.nn.functional.pad(mode="reflect")``, torchvision's ``padding_mode="reflect"``), as the authors'
   released code does.
2. **random flips** — along the two in-plane axes, H and W, each with probability 1/2 independently.
   Depth is never flipped: slice order carries anatomy (and the synthetic set's classes), and the
   paper's 2D-style augmentation acts within slices.
3. **random 90° rotations in the axial plane** — ``torch.rot90`` over (H, W) by k ∈ {0, 1, 2, 3}
   uniformly; only when ``H == W`` (otherwise the shape would change; then skipped).

Flips and rotations only permute voxels within each slice, so a volume's depth profile (the mean of
every slice) is unchanged; the crop changes it (content moves out, zeros move in).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from liftbench.datasets.volumes import prepare_batch, to_unit

PADDING = 4
PAD_MODES = ("zeros", "reflect")


AUGMENT_SEED = 1_000_003  # augmentation generators are seeded with seed + this (batch order uses seed)


def augment_volume(
    volume: torch.Tensor, generator: torch.Generator, padding: int = PADDING, flip: bool = True, rotate: bool = True, pad_mode: str = "zeros"
) -> torch.Tensor:
    """One volume ``(C, D, H, W)`` → an augmented volume of the same shape."""
    if pad_mode not in PAD_MODES:
        raise ValueError(f"unknown pad_mode {pad_mode!r}; valid: {', '.join(PAD_MODES)}")
    height, width = volume.shape[-2:]
    out = volume
    if padding > 0:
        top, left = (int(v) for v in torch.randint(0, 2 * padding + 1, (2,), generator=generator))
        if pad_mode == "reflect":  # (C, D, H, W): reflection pads the last two dims, every slice alike
            padded = F.pad(out, (padding, padding, padding, padding), mode="reflect")
        else:
            padded = F.pad(out, (padding, padding, padding, padding))
        out = padded[..., top : top + height, left : left + width]
    if flip:
        flips = torch.rand(2, generator=generator) < 0.5
        dims = [dim for dim, chosen in zip((-2, -1), flips.tolist(), strict=True) if chosen]
        if dims:
            out = torch.flip(out, dims)
    if rotate and height == width:
        k = int(torch.randint(0, 4, (1,), generator=generator))
        if k:
            out = torch.rot90(out, k, dims=(-2, -1))
    return out.contiguous()


def augment_batch(
    volumes: torch.Tensor, generator: torch.Generator, padding: int = PADDING, flip: bool = True, rotate: bool = True, pad_mode: str = "zeros"
) -> torch.Tensor:
    """A batch ``(B, C, D, H, W)``, each sample augmented independently (see the module docstring)."""
    if volumes.dim() != 5:
        raise ValueError(f"expected volumes of shape (B, C, D, H, W), got {tuple(volumes.shape)}")
    return torch.stack([augment_volume(v, generator, padding, flip, rotate, pad_mode) for v in volumes])


def training_input(volumes, index: torch.Tensor, mean, std, generator: torch.Generator | None, pad_mode: str = "zeros") -> torch.Tensor:
    """Model input for the training volumes at ``index``: raw → [0, 1] → augmented (unless ``generator``
    is None; the crop pads with ``pad_mode``) → repeated to the backbone's channels and normalised
    (:func:`liftbench.datasets.volumes.prepare_batch`)."""
    x = to_unit(volumes[index.numpy()])
    if generator is not None:
        x = augment_batch(x, generator, pad_mode=pad_mode)
    return prepare_batch(x, mean, std)
