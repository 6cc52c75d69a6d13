"""The one paired t-test behind the leaderboard's ``*`` marks and its p-value matrices (Figure 3).

Two table cells are compared over the seeds they share (a seed recorded as missing, -1, never pairs). The
test is run only where it means something; otherwise no p-value is given, with the reason:

* ``fewer than 2 common seeds`` — a t-test needs two pairs;
* ``deterministic: seeds identical`` — both cells hold the same value for every seed (a protocol with no
  randomness left, such as FeatDice, or a cached probe whose head converges to one solution). The paired
  differences are then a constant: ``scipy.stats.ttest_rel`` returns p = 0 for a non-zero constant (t = ±inf)
  and would mark a difference that no seed ever varied;
* ``paired differences have zero variance`` — the same constant difference arising while the seeds do vary.

Because the marks and the matrices call :func:`paired_test` on the same per-seed values
(:attr:`liftbench.report.formats.Cell.seeds`), a ``*`` and its matrix cell never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import ttest_rel

ALPHA = 0.05
MISSING_SEED = -1.0
ZERO = 1e-9  # percent points: a spread below this is no spread (values are means of identical floats)
FEW_SEEDS = "fewer than 2 common seeds"
DETERMINISTIC = "deterministic: seeds identical"
CONSTANT = "paired differences have zero variance"


@dataclass(frozen=True)
class Paired:
    """The outcome of one comparison: ``p_value`` (``None``: not tested, ``reason`` says why) over ``n`` seeds."""

    p_value: float | None
    reason: str
    n: int

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


def paired_test(a: Mapping[float, float], b: Mapping[float, float]) -> Paired:
    """Paired t-test of ``a`` against ``b`` (seed -> value) over their common seeds."""
    seeds = sorted(set(a) & set(b) - {MISSING_SEED})
    if len(seeds) < 2:
        return Paired(None, FEW_SEEDS, len(seeds))
    x = np.array([a[s] for s in seeds], dtype=float)
    y = np.array([b[s] for s in seeds], dtype=float)
    if np.ptp(x - y) <= ZERO:
        reason = DETERMINISTIC if np.ptp(x) <= ZERO and np.ptp(y) <= ZERO else CONSTANT
        return Paired(None, reason, len(seeds))
    p = float(ttest_rel(x, y).pvalue)
    return Paired(None if np.isnan(p) else p, "" if not np.isnan(p) else CONSTANT, len(seeds))
