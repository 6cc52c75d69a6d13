"""The MMWHS training augmentation: the authors' torchio pipeline, as released ("authors") and as meant ("fixed").

Why two modes: the released code draws one coin per sample, ``p = np.random.choice([0, 1])``, and passes
``p`` as every transform's probability, so half the samples are never augmented and the other half always
get every flip and the affine. That reads like a probability of 0.5 written as a coin; ``"fixed"`` gives each
transform its own coin at half the authors' rate instead. Image and label move together in both modes (one
``tio.Subject``): the authors' bug of this kind is in the LIDC pipeline, not here. The authors' subject also
holds the unused sdf; leaving it out changes nothing but which random numbers torchio draws.
"""

from __future__ import annotations

import numpy as np
import torch
import torchio as tio


def _authors_pipeline(p: int) -> tio.Compose:
    """The released training transform at coin ``p`` (0 or 1), all on one Subject."""
    return tio.Compose(
        [
            tio.RandomFlip(axes=(0, 1, 2), flip_probability=p),
            tio.RandomAffine(scales=(0.9, 1.1), degrees=10, translation=5, image_interpolation="linear", p=p),
            tio.RandomElasticDeformation(num_control_points=7, max_displacement=5, p=0.5 * p),
            tio.RandomGamma(log_gamma=(-0.3, 0.3), p=0.5 * p),
            tio.RandomNoise(mean=0, std=(0, 0.01), p=0.5 * p),
            tio.RandomBlur(std=(0, 1), p=0.3 * p),
        ]
    )


def _fixed_pipeline() -> tio.Compose:
    """The same transforms, each on its own coin at half the authors' probability."""
    return tio.Compose(
        [
            tio.RandomFlip(axes=(0, 1, 2), flip_probability=0.5),
            tio.RandomAffine(scales=(0.9, 1.1), degrees=10, translation=5, image_interpolation="linear", p=0.5),
            tio.RandomElasticDeformation(num_control_points=7, max_displacement=5, p=0.25),
            tio.RandomGamma(log_gamma=(-0.3, 0.3), p=0.25),
            tio.RandomNoise(mean=0, std=(0, 0.01), p=0.25),
            tio.RandomBlur(std=(0, 1), p=0.15),
        ]
    )


def augment(
    image: torch.Tensor,
    mask: torch.Tensor,
    rng: np.random.Generator,
    mode: str,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' torchio augmentation of image (1, D, H, W) and mask (D, H, W), always moved together.

    ``"authors"``: one coin per sample; heads (p=1) runs every transform: flips along all three axes, an
    affine (scale 0.9..1.1, ±10°, ±5 mm), then elastic (p=0.5), gamma (p=0.5), noise (p=0.5) and blur
    (p=0.3); tails returns the sample untouched. ``"fixed"``: each transform on its own coin at half the
    authors' rate (each flip axis 0.5, affine 0.5, elastic 0.25, gamma 0.25, noise 0.25, blur 0.15), the
    rates the authors presumably meant. ``spacing`` (mm along D, H, W) makes the millimetre translation and
    elastic displacement mean what they mean on the release. torchio draws from torch's generator, seeded
    here from ``rng`` inside a forked state, so the result depends on ``rng`` alone.
    """
    if mode not in ("fixed", "authors"):
        raise ValueError(f"augment mode must be 'fixed' or 'authors', got {mode!r}")
    coin = int(rng.integers(0, 2)) if mode == "authors" else 1
    seed = int(rng.integers(0, 2**62))
    if not coin:
        return image, mask
    subject = tio.Subject(
        image=tio.ScalarImage(tensor=image.detach().float().cpu(), affine=np.diag([*spacing, 1.0])),
        label=tio.LabelMap(tensor=mask.detach().cpu()[None].long(), affine=np.diag([*spacing, 1.0])),
    )
    pipeline = _authors_pipeline(1) if mode == "authors" else _fixed_pipeline()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = pipeline(subject)
    return out["image"].data.to(image.dtype), out["label"].data[0].to(mask.dtype)
