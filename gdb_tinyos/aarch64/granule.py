"""Translation granules (4 KiB, 16 KiB, 64 KiB) and the geometry they imply.

Every level of a VMSAv8-64 walk resolves ``stride = shift - 3`` VA bits (a table is one
granule of 8-byte entries); the last level resolves the bits just above the page offset.
Without FEAT_LPA/LPA2 (52-bit addresses) output addresses are bits [47:shift] and blocks
exist only at: 4K -> levels 1 and 2, 16K -> level 2, 64K -> level 2.

Example::

    GRANULE_4K.start_level(48)   # 0: T0SZ=16 walks L0..L3
    GRANULE_4K.block_size(2)     # 0x200000 (2 MiB)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

# Without FEAT_LPA the largest output/table address is 48 bits.
OA_BITS_MAX = 48
MIN_TXSZ = 16
MAX_TXSZ = 39  # without FEAT_TTST


@dataclass(frozen=True)
class Granule:
    """One translation granule size and the walk geometry it implies."""

    name: str
    shift: int
    block_levels: frozenset[int]
    # Entries per contiguous-hint group, by level (Arm ARM "The Contiguous bit").
    contiguous: tuple[tuple[int, int], ...]

    def __hash__(self) -> int:
        # Equal granules have one shift; hashing every field would cost a memoised
        # descriptor decode more than the lookup saves.
        return hash(self.shift)

    @property
    def size(self) -> int:
        return 1 << self.shift

    @property
    def stride(self) -> int:
        return self.shift - 3

    @cached_property
    def entries(self) -> int:
        return 1 << self.stride

    def level_shift(self, level: int) -> int:
        """Lowest VA bit indexed at ``level``; also log2 of a block/page mapped there."""
        if 0 <= level <= 3:  # asked at every level of every walk: computed once per granule
            return self._level_shifts[level]
        return self.shift + (3 - level) * self.stride  # (FEAT_LPA2's level -1, were it walked)

    @cached_property
    def _level_shifts(self) -> tuple[int, ...]:
        return tuple(self.shift + (3 - level) * self.stride for level in range(4))

    def block_size(self, level: int) -> int:
        return 1 << self.level_shift(level)

    def start_level(self, input_bits: int) -> int:
        """First level of a walk for an input range of ``input_bits`` bits."""
        levels = -(-(input_bits - self.shift) // self.stride)
        return 4 - levels

    def table_entries(self, level: int, input_bits: int) -> int:
        """Entries of a table at ``level``; the start level's table may be smaller."""
        return min(self.entries, 1 << max(input_bits - self.level_shift(level), 0))

    def index(self, va: int, level: int, input_bits: int) -> int:
        return (va >> self.level_shift(level)) & (self.table_entries(level, input_bits) - 1)

    def allows_block(self, level: int) -> bool:
        return level in self.block_levels

    def contiguous_entries(self, level: int) -> int:
        return dict(self.contiguous).get(level, 1)

    def output_address(self, descriptor: int, level: int) -> int:
        """Output address bits [47:level_shift] of a block or page descriptor."""
        return descriptor & _mask(OA_BITS_MAX, self.level_shift(level))

    def next_table_address(self, descriptor: int) -> int:
        """Next-level table address bits [47:shift] of a table descriptor."""
        return descriptor & self._table_address_mask

    @cached_property
    def _table_address_mask(self) -> int:
        return _mask(OA_BITS_MAX, self.shift)


def _mask(top_exclusive: int, lsb: int) -> int:
    return ((1 << top_exclusive) - 1) & ~((1 << lsb) - 1)


GRANULE_4K = Granule("4K", 12, frozenset({1, 2}), ((1, 16), (2, 16), (3, 16)))
GRANULE_16K = Granule("16K", 14, frozenset({2}), ((2, 32), (3, 128)))
GRANULE_64K = Granule("64K", 16, frozenset({2}), ((2, 32), (3, 32)))
GRANULES = (GRANULE_4K, GRANULE_16K, GRANULE_64K)
