"""The growth of a curve: its slope on log-log axes, and where a ratio settles.

A step time :math:`t(n) \\approx c\\, n^{a}` has slope :math:`a` on log-log axes: 0 while
a fixed overhead dominates, 1 once the work is linear in :math:`n`.  :func:`slope` fits
:math:`\\log t = a \\log n + b` by least squares over the given points.
"""
import math
from typing import Optional, Sequence


def slope(sizes: Sequence[float], values: Sequence[float]) -> Optional[float]:
    """The least-squares slope of ``log(values)`` on ``log(sizes)``; ``None`` with fewer
    than two distinct positive sizes or a non-positive value.

    >>> round(slope([1, 10, 100], [2.0, 20.0, 200.0]), 6)
    1.0
    """
    pts = [(math.log(s), math.log(v)) for s, v in zip(sizes, values) if s > 0 and v > 0]
    if len(pts) != len(sizes) or len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def settles_at(sizes: Sequence[float], ratios: Sequence[float],
               limit: float) -> Optional[float]:
    """The smallest size from which every ratio (this one and all larger sizes') is at
    most ``limit``: where an overhead stops mattering; ``None`` if the last one is above.

    >>> settles_at([1, 2, 4, 8], [1.5, 1.02, 1.2, 1.01], 1.05)
    8
    """
    found = None
    for s, r in sorted(zip(sizes, ratios), reverse=True):
        if r > limit:
            break
        found = s
    return found
