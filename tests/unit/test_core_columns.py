"""core.columns: interleaved is the inverse of cutting a list into its k::n slices."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gdb_tinyos.core.columns import interleaved


@given(st.lists(st.integers()), st.integers(1, 5))
def test_interleaved_undoes_the_slices(values, n):
    assert interleaved([values[k::n] for k in range(n)]) == values


def test_interleaved_takes_any_sequence():
    assert interleaved([range(3), (10, 20, 30)]) == [0, 10, 1, 20, 2, 30]
    assert interleaved([]) == []
