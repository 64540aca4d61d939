"""Where a loaded image's bytes are in physical memory: its ELF load segments.

A kernel linked in the upper half is loaded at its segments' physical addresses (``p_paddr``)
and maps itself there; so a static's physical address follows from the ELF alone, whatever
the CPU's translation state. :class:`ImageMap` answers that for a range of virtual addresses.

Example::

    image = ImageMap((LoadSegment(vaddr=0xFFFF_0000_4008_0000, paddr=0x4008_0000, size=0x20000),))
    image.physical(0xFFFF_0000_4008_1000, 16)     # 0x40081000
    image.physical(0x1000, 16)                     # None: not part of the image
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadSegment:
    """One PT_LOAD segment: ``size`` bytes linked at ``vaddr``, loaded at ``paddr``."""

    vaddr: int
    paddr: int
    size: int

    def contains(self, va: int, size: int) -> bool:
        return self.vaddr <= va and va + size <= self.vaddr + self.size


@dataclass(frozen=True)
class ImageMap:
    """The load segments of one image (empty: nothing known)."""

    segments: tuple[LoadSegment, ...] = ()

    def physical(self, va: int, size: int) -> int | None:
        """The load address of ``[va, va + size)`` when one segment holds all of it."""
        for seg in self.segments:
            if seg.contains(va, size):
                return seg.paddr + (va - seg.vaddr)
        return None

    @property
    def relocated(self) -> bool:
        """Whether any segment is linked at an address other than its load address."""
        return any(seg.vaddr != seg.paddr for seg in self.segments)
