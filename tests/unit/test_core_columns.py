"""core.columns: interleaved is the inverse of cutting a list into its k::n slices;
unsigned_column reads little-endian words as int.from_bytes does, one by one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gdb_tinyos.core.columns import interleaved, unsigned_column


@given(st.lists(st.integers()), st.integers(1, 5))
def test_interleaved_undoes_the_slices(values, n):
    assert interleaved([values[k::n] for k in range(n)]) == values


def test_interleaved_takes_any_sequence():
    assert interleaved([range(3), (10, 20, 30)]) == [0, 10, 1, 20, 2, 30]
    assert interleaved([]) == []


@given(st.sampled_from([1, 2, 3, 4, 8]), st.data())
def test_unsigned_column_reads_each_word_little_endian(size, data):
    raw = data.draw(st.binary(max_size=64).map(lambda b: b[: len(b) - len(b) % size]))
    expected = [int.from_bytes(raw[i:i + size], "little") for i in range(0, len(raw), size)]
    assert list(unsigned_column(raw, size)) == expected
    assert list(unsigned_column(memoryview(raw), size)) == expected  # a slice of a larger read


def test_unsigned_column_keeps_the_top_bit_unsigned():
    assert list(unsigned_column(b"\xff" * 16, 8)) == [2**64 - 1] * 2
