"""Shared helpers for the unit tests (keep small)."""

from __future__ import annotations

import pytest

from gdb_tinyos.core.target import FakeTarget


class TableImage:
    """Synthetic translation tables in a FakeTarget.

    Tables are carved out of a pool of granule-sized pages; entries are written as raw
    64-bit values composed by each test from the Arm ARM bit positions, so the image
    never depends on the decoder under test.
    """

    def __init__(self, granule: int = 4096, pool: int = 0x4010_0000) -> None:
        self.target = FakeTarget()
        self.granule = granule
        self.next_free = pool

    def table(self, size: int | None = None) -> int:
        """Allocate a zeroed (all-invalid) table; ``size`` bytes for a small root table."""
        pa = self.next_free
        self.next_free += self.granule
        self.target.write_physical(pa, bytes(size or self.granule))
        return pa

    def set(self, table: int, index: int, value: int) -> None:
        self.target.write_u64(table + 8 * index, value)

    def registers(self, **values: int) -> None:
        self.target.registers.update(values)


@pytest.fixture
def image() -> TableImage:
    return TableImage()


@pytest.fixture
def image_factory():
    return TableImage
