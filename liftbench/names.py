"""Names a user typed that match nothing: the one "did you mean" rule, for every kind, option, flag and hook.

The distance is optimal string alignment (a typo or two swapped neighbours cost one edit), ties broken by
similarity; a candidate more than half the name's length away is no suggestion at all.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: typos, and swapped neighbours ('pgc' → 'pcg') cost 1."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[len(b)]


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate a typo most likely meant: fewest edits, then most similar; None if none is close."""
    if not candidates:
        return None
    scored = sorted(candidates, key=lambda c: (edit_distance(name, c), -difflib.SequenceMatcher(None, name, c).ratio()))
    best = scored[0]
    return best if edit_distance(name, best) <= max(1, len(name) // 2) else None


def did_you_mean(name: str, candidates: Iterable[str], *, ordered: bool = False, otherwise: str = ";") -> str:
    """``"; did you mean 'x'?"`` when a candidate is close to ``name``, else ``otherwise`` — to go before a
    message's ``valid: ...`` list, as every unknown-name message words it. ``ordered``: ties go to the
    candidate listed first (the leaderboard's metric order: 'acu' is nearest 'auc'), else to the first sorted."""
    pool = list(candidates) if ordered else sorted(candidates)
    near = closest(str(name), pool)
    return f"; did you mean {near!r}?" if near else otherwise
