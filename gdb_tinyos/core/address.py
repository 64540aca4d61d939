"""Addresses as a type: integers that render as hex everywhere (text, JSON, MI), and the
4 KiB page (TinyOS's frame and page size) an address falls in.

The one JSON rule of gdb-tinyos: virtual and physical addresses, table addresses,
descriptors and register values are ``"0x..."`` strings in ``--json`` and MI output,
because 64-bit values do not survive JSON readers that use doubles; counts, sizes,
indices, pids, ASIDs and levels stay numbers. Decoders mark a field as an address by
storing an :class:`Address` in it; :func:`gdb_tinyos.core.render.to_plain` does the rest.

``Address`` is an ``int``: comparisons, hashing and arithmetic work as for any int
(``Address(0x1000) + 1`` is a plain ``int``).

Example::

    Address(0x4008_0000)          # 0x40080000
    f"{Address(4096)}"            # '0x1000'
    Address(4096) == 4096         # True
"""

from __future__ import annotations


class Address(int):
    """An integer that renders as hex: addresses, descriptors, register values."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{int(self):#x}"

    __repr__ = __str__


# TinyOS maps and tracks memory in 4 KiB frames (the contract's 4 KiB granule).
PAGE_SIZE = 4096


def page_base(addr: int) -> int:
    """The start of the 4 KiB page holding ``addr`` (a frame's PA, or a page's VA)."""
    return addr & ~(PAGE_SIZE - 1)


def hexs(value: int | None, width: int = 0) -> str:
    """``0x``-prefixed lower-case hex, zero-padded to ``width`` digits; ``-`` for None."""
    if value is None:
        return "-"
    return f"0x{value:0{width}x}"
