"""Result types of a translation: permissions, attributes, mappings, faults and walks.

Plain frozen dataclasses so that one object feeds the text renderer, JSON and MI results
(:func:`gdb_tinyos.core.render.to_plain`); address-valued fields hold
:class:`~gdb_tinyos.core.address.Address` so that they render as hex strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..core.address import Address
from .descriptors import Descriptor, DescriptorKind
from .sysregs import MemoryAttribute


@dataclass(frozen=True)
class Permissions:
    """Effective stage-1 permissions for EL1 and EL0 (after table inheritance, WXN).

    In a one-range regime (EL2 without VHE, EL3) there is no EL0: the ``el1_*`` fields are
    that regime's own EL (``el``), the ``el0_*`` fields all False."""

    el1_read: bool
    el1_write: bool
    el1_exec: bool
    el0_read: bool
    el0_write: bool
    el0_exec: bool
    el: int = 1  # the privileged EL: 1 (EL1&0), 2 (EL2, or EL2&0 under VHE) or 3
    el0: bool = True  # the regime has an EL0 (not EL2 without VHE, not EL3)

    @staticmethod
    def _rwx(r: bool, w: bool, x: bool) -> str:
        return ("R" if r else "-") + ("W" if w else "-") + ("X" if x else "-")

    def describe(self) -> str:
        own = f"EL{self.el}:{self._rwx(self.el1_read, self.el1_write, self.el1_exec)}"
        if not self.el0:
            return own
        return f"{own} EL0:{self._rwx(self.el0_read, self.el0_write, self.el0_exec)}"

    @property
    def writable(self) -> bool:
        return self.el1_write or self.el0_write

    @property
    def executable(self) -> bool:
        return self.el1_exec or self.el0_exec

    @property
    def user(self) -> bool:
        return self.el0_read or self.el0_write or self.el0_exec


@dataclass(frozen=True)
class Attributes:
    """Everything about a leaf except where it is: the key used to merge ranges."""

    perms: Permissions
    pxn: bool  # descriptor PXN or an upper level's PXNTable
    uxn: bool  # descriptor UXN or an upper level's UXNTable
    memory: MemoryAttribute
    shareability: str
    af: bool
    ng: bool
    contiguous: bool
    dbm: bool
    ns: bool

    def describe(self) -> str:
        parts = [self.perms.describe()]
        parts += [name for name, on in (("PXN", self.pxn), ("UXN", self.uxn)) if on]
        parts.append(self.memory.kind)
        parts.append(f"({self.memory.name})")
        if self.memory.kind == "normal":
            parts.append(self.shareability)
        parts += [n for n, on in (("nG", self.ng), ("CONT", self.contiguous), ("DBM", self.dbm), ("NS", self.ns)) if on]
        if not self.af:
            parts.append("AF=0")
        return " ".join(parts)


@dataclass(frozen=True)
class Mapping:
    """A translation found for ``va``: the whole block/page and where ``va`` lands in it."""

    va: Address
    pa: Address
    va_base: Address
    pa_base: Address
    size: int
    level: int
    kind: DescriptorKind
    attrs: Attributes
    asid: int | None  # the ASID the entry is tagged with (nG), None for global entries

    def describe(self) -> str:
        return f"va {self.va:#x} -> pa {self.pa:#x} {self.attrs.describe()}"


class FaultKind(Enum):
    TRANSLATION = "translation"
    ADDRESS_SIZE = "address size"
    ACCESS_FLAG = "access flag"
    EXTERNAL_ABORT = "external abort on table walk"  # the table could not be read
    CONFIGURATION = "configuration"  # e.g. a reserved TCR_EL1.TGx encoding


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    level: int
    message: str

    def describe(self) -> str:
        return f"{self.kind.value} fault at level {self.level}: {self.message}"


@dataclass(frozen=True)
class WalkStep:
    """One level of a walk: which table, which entry, and what it held."""

    level: int
    table: Address
    index: int
    descriptor: Address
    kind: DescriptorKind
    decoded: Descriptor

    def describe(self) -> str:
        return f"L{self.level} index={self.index} table={self.table:#x} desc={self.descriptor:#018x} {self.kind.value}"


@dataclass(frozen=True)
class Walk:
    """The outcome of translating one VA: a mapping, a fault, or both (AF=0)."""

    va: Address
    mmu_enabled: bool
    ttbr: int | None  # 0 or 1; None when the MMU is off or the VA selects no range
    steps: tuple[WalkStep, ...] = ()
    mapping: Mapping | None = None
    fault: Fault | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.mmu_enabled or (self.mapping is not None and self.fault is None)

    @property
    def pa(self) -> Address | None:
        """The physical address the CPU would access, or None if the access faults."""
        if not self.mmu_enabled:
            return self.va
        return self.mapping.pa if self.mapping is not None and self.fault is None else None

    def describe(self) -> str:
        lines = [s.describe() for s in self.steps]
        if not self.mmu_enabled:
            lines.append(f"va {self.va:#x} -> pa {self.va:#x} (MMU off: flat mapping)")
        elif self.mapping is not None:
            lines.append(self.mapping.describe())
        if self.fault is not None:
            what = "faults" if self.mapping is not None else "not mapped"
            # the shell's words, then the fault's kind and why (its level said once)
            lines.append(f"va {self.va:#x}: {what} (fault at level {self.fault.level}): "
                         f"{self.fault.kind.value} fault: {self.fault.message}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
