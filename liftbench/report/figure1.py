"""Figure 1 of the PlaneCycle paper for any backbone, strategies and volume: PCA of frozen lifted features.

For one volume, each strategy's dense features ``(E, D', H', W')`` (:func:`liftbench.lifted_features`) are
projected on **one** PCA fitted to all the strategies' features together (3 components, so the colours of
two panels mean the same thing), mapped to RGB, and drawn on the volume's central HW, DW and DH planes beside
the input's. A lifting that fuses across slices shows smooth colour along D in the DW and DH planes; slice-2D
shows each slice on its own, striped across slices wherever the slices differ.

**Cross-slice coherence**, the number beside each strategy: with the features centred on their mean over the
volume's positions, ``coh_D`` is the mean cosine similarity of the features of neighbouring positions along D
(adjacent slices of the feature grid; two neighbours holding the same vector count 1), and ``coh_HW`` the same along H and along W (the two averaged). ``coh_D
= 1`` means every slice's features equal its neighbour's (a volume constant along D gives exactly that under
slice-2D, whatever the backbone: the known answer tested in ``tests/report/test_figure1.py``); ``coh_D / coh_HW``
says how coherent features are across slices compared with within a slice (given only where ``coh_HW > 0.05``). Neighbours along D are one slice
apart and along H and W one patch apart (8 pixels for a ViT/8), so the ratio compares grids, not distances.
An axis of length 1 (a CNN's last stage at 32³) has no neighbours: its coherence is undefined (``nan``).

Files: ``<stem>.png`` and ``<stem>.svg``, written through :func:`liftbench.report.plots.save` (a dateless SVG with a
fixed hash salt; the PNG holds no date): the same inputs give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PLANES = ("HW", "DW", "DH")
EPS = 1e-12
MIN_HW = 0.05  # coh_D / coh_HW only where in-plane neighbours are this similar
SAME = 1e-6  # relative: neighbours closer than this are the same feature


@dataclass
class Coherence:
    d: float  # mean cosine similarity of neighbours along D
    hw: float  # ... along H and W, averaged

    @property
    def ratio(self) -> float:
        """``d / hw``; undefined unless in-plane neighbours are similar (``hw > MIN_HW``): near zero, the ratio of
        two small numbers says nothing (a 2x2 CNN map, centred, has in-plane cosines near 0 or below)."""
        return self.d / self.hw if self.hw > MIN_HW else math.nan

    def text(self) -> str:
        def fmt(x: float) -> str:
            return "n/a" if math.isnan(x) else f"{x:.3f}"

        return f"coh_D {fmt(self.d)}, coh_D/coh_HW {fmt(self.ratio)}"


def _neighbour_cosine(f: torch.Tensor, axis: int, scale: float) -> float:
    """Mean cosine similarity of ``f`` (E, D, H, W) and its neighbour one step along ``axis`` (1, 2 or 3). Two
    neighbours that are the same vector (within ``SAME`` of ``scale``) count 1, even where centring made both
    zero (a grid whose every position holds one feature: a 1x1 CNN map of a volume constant along D)."""
    n = f.shape[axis]
    if n < 2:
        return math.nan
    a, b = f.narrow(axis, 0, n - 1), f.narrow(axis, 1, n - 1)
    cos = (a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0)).clamp_min(EPS)
    cos = torch.where((a - b).norm(dim=0) <= SAME * scale, torch.ones_like(cos), cos)
    return float(cos.mean())


def coherence(patches: torch.Tensor) -> Coherence:
    """The cross-slice coherence of one volume's dense features ``(E, D, H, W)`` (see the module docstring)."""
    f = patches.double()
    scale = float(f.norm(dim=0).mean())
    f = f - f.mean(dim=(1, 2, 3), keepdim=True)
    along_h, along_w = _neighbour_cosine(f, 2, scale), _neighbour_cosine(f, 3, scale)
    hw = [x for x in (along_h, along_w) if not math.isnan(x)]
    return Coherence(d=_neighbour_cosine(f, 1, scale), hw=sum(hw) / len(hw) if hw else math.nan)


def pca_rgb(features: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """One PCA (3 components) fitted on every grid of ``features`` (each ``(E, D, H, W)``) together; each grid
    as RGB ``(D, H, W, 3)`` in [0, 1]. Component signs are fixed (largest loading positive) and each component
    is scaled by its 1st..99th percentile over all grids, so the result is deterministic and comparable."""
    flat = [f.reshape(f.shape[0], -1).T.double().numpy() for f in features]
    data = np.concatenate(flat)
    mean = data.mean(0)
    _, _, vt = np.linalg.svd(data - mean, full_matrices=False)
    comps = vt[:3]
    comps = comps * np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])[:, None]
    proj = (data - mean) @ comps.T
    if proj.shape[1] < 3:  # fewer than 3 directions (a single position): pad with grey
        proj = np.concatenate([proj, np.zeros((len(proj), 3 - proj.shape[1]))], axis=1)
    low, high = np.percentile(proj, 1, axis=0), np.percentile(proj, 99, axis=0)
    rgb = np.clip((proj - low) / np.where(high > low, high - low, 1.0), 0.0, 1.0)
    out, start = [], 0
    for f, part in zip(features, flat, strict=True):
        out.append(rgb[start:start + len(part)].reshape(*f.shape[1:], 3))
        start += len(part)
    return out


def central_planes(grid: np.ndarray) -> dict[str, np.ndarray]:
    """The central HW, DW and DH planes of a ``(D, H, W, ...)`` array (rows first: D runs down DW and DH)."""
    d, h, w = grid.shape[:3]
    return {"HW": grid[d // 2], "DW": grid[:, h // 2], "DH": grid[:, :, w // 2]}


@dataclass
class Panel:
    """One strategy's row of the figure."""

    strategy: str
    rgb: np.ndarray  # (D', H', W', 3)
    coherence: Coherence


def panels(backbone, strategies: Sequence[str], volume: np.ndarray, **lift) -> list[Panel]:
    """Every strategy's features of ``volume`` ``(1, D, H, W)``, coloured by one joint PCA."""
    from liftbench import lifted_features

    grids = [lifted_features(backbone, s, volume[None], **lift).patches[0] for s in strategies]
    return [Panel(s, rgb, coherence(g)) for s, rgb, g in zip(strategies, pca_rgb(grids), grids, strict=True)]


def draw(volume: np.ndarray, rows: Sequence[Panel], stem: Path, title: str) -> list[Path]:
    """The figure: the input's planes, then one row per strategy, as ``stem``.png/.svg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from liftbench.report.plots import save

    image = volume[0].astype(np.float64)
    size = image.shape  # (D, H, W): every plane is drawn over the input's extent, so grids of any size line up
    extent = {"HW": (0, size[2], size[1], 0), "DW": (0, size[2], size[0], 0), "DH": (0, size[1], size[0], 0)}
    fig, axes = plt.subplots(len(rows) + 1, 3, figsize=(6.0, 2.0 * (len(rows) + 1) + 0.4), squeeze=False)
    planes = central_planes(image)
    for j, plane in enumerate(PLANES):
        axes[0][j].imshow(planes[plane], cmap="gray", extent=extent[plane], interpolation="nearest")
        axes[0][j].set_title(f"input, {plane}", fontsize=8)
    for i, row in enumerate(rows, start=1):
        coloured = central_planes(row.rgb)
        for j, plane in enumerate(PLANES):
            axes[i][j].imshow(coloured[plane], extent=extent[plane], interpolation="nearest")
            axes[i][j].set_title(f"{row.strategy}, {plane}", fontsize=8)
        axes[i][0].set_ylabel(row.coherence.text().replace(", ", "\n"), fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    stem.parent.mkdir(parents=True, exist_ok=True)
    return save(fig, stem)
