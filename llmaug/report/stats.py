"""95% confidence intervals, closed-form so a figure is the same on every run of the report.

Wilson's interval for a share of users (it stays inside [0, 1] and is sensible at 0 and 1, where
a normal interval collapses); a normal interval for a mean of per-user values, which is what a
baseline's expected hit rate, a paired difference and a per-user AUC are.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

Z95 = 1.959963984540054


def wilson(successes: int, n: int) -> list[float]:
    if n == 0:
        return [0.0, 1.0]
    share = successes / n
    centre = (share + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(share * (1 - share) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def mean_interval(values: np.ndarray) -> tuple[float, Optional[list[float]]]:
    """Mean of at least one value and its 95% interval (normal, over the standard error); no
    interval from a single value."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, None
    half = Z95 * float(values.std(ddof=1)) / math.sqrt(len(values))
    return mean, [mean - half, mean + half]
