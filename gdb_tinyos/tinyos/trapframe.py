"""The kernel's saved exception frame (``TrapFrame``), read from DWARF: what `bt` unwinds through.

Every exception vector reserves a ``TrapFrame`` on SP_EL1, saves x0-x30, SP_EL0, ELR, SPSR,
ESR and FAR into it, and calls ``tinyos_trap`` with SP pointing at it
(kernel/src/arch/aarch64/exception.rs). So the frame whose return address is the
instruction after that call sits at the frame's address, and the interrupted context is:
x0-x30 as saved, pc = ELR, PSTATE = SPSR, and sp = SP_EL0 when the exception came from
EL0 (or EL1t), else the frame's end (the vector's ``sub sp, sp, #size`` undone).

The layout (member offsets, the register array's length) comes from the struct's DWARF,
never from constants, as the kernel's own assembly offsets come from ``offset_of!``.

Example::

    layout = TrapFrameLayout.from_debuginfo(info)
    frame = layout.decode(target.read_virtual(sp, layout.size), address=sp)
    frame.origin_el, hex(frame.registers()["pc"])      # 0, '0x40020c'
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..core.errors import LayoutError, SymbolError
from ..debuginfo import ArrayType, DebugInfo, StructType

# The struct as the kernel names it, and the members the unwinder needs.
TRAP_FRAME_TYPE = "arch::aarch64::exception::TrapFrame"
_SCALARS = ("sp_el0", "elr", "spsr", "esr", "far")

# The assembly labels around the call into Rust: `bl tinyos_trap` is followed directly
# by the exit path `tinyos_trap_return`, so that label is the call's return address.
TRAP_HANDLER = "tinyos_trap"
TRAP_RETURN = "tinyos_trap_return"
TRAP_ENTRY = "tinyos_trap_entry"

# SPSR_EL1.M[3:0] (Arm ARM C5.2.18): the exception level and stack the exception came from.
_SPSR_MODES = {0b0000: (0, "EL0t"), 0b0100: (1, "EL1t"), 0b0101: (1, "EL1h")}


@dataclass(frozen=True)
class TrapFrameLayout:
    """Offsets of the saved registers inside ``TrapFrame`` and its size, from DWARF."""

    size: int
    x_offset: int
    x_count: int
    offsets: dict[str, int]  # sp_el0, elr, spsr, esr, far

    @classmethod
    def from_struct(cls, t: StructType) -> TrapFrameLayout:
        """The layout of a ``TrapFrame``-shaped struct; LayoutError names what is missing."""
        members = {m.name: m for m in t.members}
        missing = [name for name in ("x", *_SCALARS) if name not in members]
        if missing:
            raise LayoutError(f"{t.name or 'TrapFrame'} lacks member(s) {', '.join(missing)}: not a trap frame")
        x = members["x"].type.strip_typedefs()
        if not isinstance(x, ArrayType) or x.element.size != 8 or not 0 < x.count <= 31:
            raise LayoutError(f"{t.name}.x is not an array of at most 31 64-bit registers")
        for name in _SCALARS:
            if members[name].type.size != 8:
                raise LayoutError(f"{t.name}.{name} is not a 64-bit register")
        return cls(t.size, members["x"].offset, x.count, {name: members[name].offset for name in _SCALARS})

    @classmethod
    def from_debuginfo(cls, info: DebugInfo) -> TrapFrameLayout:
        t = info.type(TRAP_FRAME_TYPE).strip_typedefs()
        if not isinstance(t, StructType):
            raise LayoutError(f"{TRAP_FRAME_TYPE} is not a struct in {info.path}")
        return cls.from_struct(t)

    def decode(self, data: bytes, address: int) -> TrapFrame:
        if len(data) < self.size:
            raise LayoutError(f"a trap frame is {self.size} bytes; got {len(data)}")

        def word(offset: int) -> int:
            return struct.unpack_from("<Q", data, offset)[0]

        x = tuple(word(self.x_offset + 8 * i) for i in range(self.x_count))
        return TrapFrame(address, self.size, x, **{name: word(off) for name, off in self.offsets.items()})


@dataclass(frozen=True)
class TrapFrame:
    """One saved exception frame at ``address`` (on the kernel stack)."""

    address: int
    size: int
    x: tuple[int, ...]
    sp_el0: int
    elr: int
    spsr: int
    esr: int
    far: int

    @property
    def mode(self) -> str:
        """``EL0t``, ``EL1t``, ``EL1h`` (or ``M=0bNNNN`` for a mode the kernel never runs in)."""
        known = _SPSR_MODES.get(self.spsr & 0xF)
        return known[1] if known else f"M={self.spsr & 0xF:#06b}"

    @property
    def origin_el(self) -> int | None:
        """The exception level the exception was taken from (None: an unknown SPSR mode)."""
        known = _SPSR_MODES.get(self.spsr & 0xF)
        return known[0] if known else None

    @property
    def interrupted_sp(self) -> int:
        """The stack pointer at the interrupted instruction: SP_EL0 for EL0t and EL1t (they
        run on SP_EL0); for EL1h the vector's frame reservation undone."""
        return self.sp_el0 if self.spsr & 1 == 0 else self.address + self.size

    def registers(self) -> dict[str, int]:
        """The interrupted context, by gdb's AArch64 register names (PSTATE is ``cpsr``, 32 bits)."""
        regs = {f"x{i}": v for i, v in enumerate(self.x)}
        regs.update(sp=self.interrupted_sp, pc=self.elr, cpsr=self.spsr & 0xFFFF_FFFF)
        return regs


def bl_target(word: int, pc: int) -> int | None:
    """The destination of the instruction ``word`` at ``pc`` if it is ``BL imm26`` (Arm ARM
    C6.2.34: bits [31:26] = 0b100101, offset = SignExtend(imm26:'00')), else None."""
    if word >> 26 != 0b100101:
        return None
    imm = (word & 0x03FF_FFFF) << 2
    if imm & (1 << 27):
        imm -= 1 << 28
    return (pc + imm) & 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class TrapSite:
    """Where the exception entry calls into Rust: the call's return address (the pc of the
    entry's frame in a backtrace) and the entry label's address."""

    return_address: int
    entry: int

    @classmethod
    def from_debuginfo(cls, info: DebugInfo, read_word) -> TrapSite:
        """Check from the code itself that the instruction before ``tinyos_trap_return`` is
        ``bl tinyos_trap`` (``read_word(va)`` reads 4 bytes of kernel text); SymbolError else."""
        handler = info.symbol(TRAP_HANDLER).address
        ret = info.symbol(TRAP_RETURN).address
        try:
            entry = info.symbol(TRAP_ENTRY).address
        except SymbolError:
            entry = ret - 4
        if bl_target(read_word(ret - 4), ret - 4) != handler:
            raise SymbolError(f"the instruction before {TRAP_RETURN} is not `bl {TRAP_HANDLER}`: "
                              "this kernel's exception entry is not the one the trap unwinder knows")
        return cls(ret, entry)
