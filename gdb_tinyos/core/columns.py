"""Columns of values built in C, a column at a time (no Python step per value).

Example::

    interleaved([[1, 2, 3], [10, 20]])   # [1, 10, 2, 20, 3]: the inverse of seq[k::2]
    unsigned_column(b"\\x01\\x00\\x02\\x00", 2)   # array('H', [1, 2])
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

# An array type code for each width this host's arrays have.
_NATIVE = {array(code).itemsize: code for code in "QLIHB"}


def interleaved(columns: Sequence[Sequence]) -> list:
    """``columns[0][0], columns[1][0], ..., columns[0][1], ...``: the list whose ``k::n``
    slices are the ``n`` columns (each as long as that slice: the first ones may hold one
    value more), by one slice assignment per column."""
    out: list = [None] * sum(map(len, columns))
    for k, column in enumerate(columns):
        out[k::len(columns)] = column
    return out


def unsigned_column(data: bytes | memoryview, size: int) -> Sequence[int]:
    """``data`` as little-endian unsigned ``size``-byte integers: an array of machine words
    where the host has that width (a copy of the bytes, no int made until one is read,
    nothing for the cycle collector to scan), else a tuple."""
    code = _NATIVE.get(size)
    if code is None:
        return tuple(int.from_bytes(data[i:i + size], "little") for i in range(0, len(data) - size + 1, size))
    words = array(code)
    words.frombytes(data)
    if sys.byteorder == "big":
        words.byteswap()
    return words
