"""Columns of values built in C, a column at a time (no Python step per value).

Example::

    interleaved([[1, 2, 3], [10, 20]])   # [1, 10, 2, 20, 3]: the inverse of seq[k::2]
"""

from __future__ import annotations

from collections.abc import Sequence


def interleaved(columns: Sequence[Sequence]) -> list:
    """``columns[0][0], columns[1][0], ..., columns[0][1], ...``: the list whose ``k::n``
    slices are the ``n`` columns (each as long as that slice: the first ones may hold one
    value more), by one slice assignment per column."""
    out: list = [None] * sum(map(len, columns))
    for k, column in enumerate(columns):
        out[k::len(columns)] = column
    return out
