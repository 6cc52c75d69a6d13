"""How far from chance a binary classifier's test ACC and AUC can fall when it has learned nothing.

The null hypothesis: a classifier's test scores are independent of the test labels — what holds when every
class gives the features the same distribution (the diagnostic set's slice-2D features with an order-blind
head, by construction). The classifier was trained on other volumes, so on the test set its outputs are
exchangeable and independent of which volumes carry which label. Then, for a test set of ``n0`` and ``n1``
volumes of the two classes:

* **ACC**: given the predictions, with ``m`` volumes predicted positive, the number ``K`` of those that are
  truly positive is hypergeometric (``n0 + n1`` volumes, ``n1`` positive, ``m`` drawn), and the accuracy is
  ``(2K + n0 - m) / n``. :func:`accuracy_bounds` takes, over every ``m``, the widest central ``1 - alpha``
  interval, so it holds whatever the classifier predicts. Balanced classes centre it on 1/2.
* **AUC**: the Mann-Whitney statistic ``U / (n0 n1)``; without ties its null mean is 1/2 and variance
  ``(n + 1) / (12 n0 n1)``. :func:`auc_bounds` uses the normal approximation; ties only shrink the variance,
  so the interval is conservative.
"""

from __future__ import annotations

import math

from scipy.stats import hypergeom, norm


def accuracy_bounds(n0: int, n1: int, alpha: float = 0.01) -> tuple[float, float]:
    """``(low, high)``: a label-blind classifier's test accuracy lies inside with probability >= 1 - alpha."""
    n = n0 + n1
    low, high = 1.0, 0.0
    for m in range(n + 1):
        k_low, k_high = hypergeom.ppf(alpha / 2, n, n1, m), hypergeom.isf(alpha / 2, n, n1, m)
        low = min(low, (2 * k_low + n0 - m) / n)
        high = max(high, (2 * k_high + n0 - m) / n)
    return float(low), float(high)


def auc_bounds(n0: int, n1: int, alpha: float = 0.01) -> tuple[float, float]:
    """``(low, high)``: a label-blind classifier's test AUC lies inside with probability about >= 1 - alpha."""
    half = norm.isf(alpha / 2) * math.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1))
    return float(0.5 - half), float(0.5 + half)
