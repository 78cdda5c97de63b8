"""Grouping equal values of an array while keeping their stream order (shared by the golden models)."""

from __future__ import annotations

import numpy as np

__all__ = ["sort_groups"]


def sort_groups(values: np.ndarray):
    """Sort a 1-D array of non-negative integers, keeping equal values in position order.

    Returns ``(pos, sorted_values, new)``: ``values[pos]`` is ``sorted_values``
    (uint64), sorted, and ``new[i]`` marks the first element of each run of
    equal values (its first occurrence in the stream).
    """
    values = np.asarray(values).astype(np.uint64, copy=False)
    n = len(values)
    pb = max(1, (n - 1).bit_length())
    if n and int(values.max()) >> (64 - pb) == 0:
        # Sort value and position packed in one word: a plain sort is much
        # faster than a stable argsort, and equal values stay in position order.
        packed = np.sort((values << np.uint64(pb)) | np.arange(n, dtype=np.uint64))
        sv = packed >> np.uint64(pb)
        pos = (packed & np.uint64((1 << pb) - 1)).astype(np.intp)
    else:
        pos = np.argsort(values, kind="stable")
        sv = values[pos]
    new = np.empty(n, dtype=bool)
    new[:1] = True
    np.not_equal(sv[1:], sv[:-1], out=new[1:])
    return pos, sv, new
