"""`bt` through the trap: unwind the kernel's exception entry into the interrupted code.

The exception vectors save a ``TrapFrame`` (:mod:`gdb_tinyos.tinyos.trapframe`) on the
kernel stack and call ``tinyos_trap``; the entry code has no call-frame information, so gdb
alone stops there ("previous frame identical to this frame"). :class:`TrapUnwinder` claims
the frame whose pc is that call's return address and gives gdb the saved registers as the
caller's: pc = ELR, x0-x30, sp (SP_EL0 for EL0) and cpsr = SPSR. `bt` then continues into
the interrupted frame (user code at EL0, or the kernel function that faulted at EL1);
`frame N` / `info registers` there show the saved values. Stopped at the first
instruction of an exception vector (an interrupt just taken: nothing saved yet), the caller
is the interrupted code from the live registers the exception set (ELR_EL1, SPSR_EL1,
SP_EL0 or the current SP).

:class:`TrapFrameFilter` names the frames: the entry as
``tinyos_trap_entry <EL0t: ESR 0x9200004f FAR 0x800000>`` and interrupted EL0
code as ``<user pid 2>`` (the running process), where the backtrace ends: user code has no
kernel stack beyond it.

Example (stopped in ``resolve_locked`` during ``run forkwrite``)::

    (gdb) bt
    #0  tinyos::process::cow_fault::resolve_locked (...) at src/process/cow_fault.rs:104
    ...
    #3  0xffff000040080ff4 in tinyos_trap_entry <EL0t: ESR 0x9200004f FAR 0x800000> ()
    #4  0x000000000040020c in <user pid 2> ()
    (gdb) frame 4
    (gdb) info registers pc x19
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import gdb
import gdb.unwinder
from gdb.FrameDecorator import FrameDecorator

from ..core import registers
from ..core.errors import TinyOSError
from ..tinyos.trapframe import TrapFrame, TrapFrameLayout, TrapSite
from .session import session
from .target import unwinder_context

_NAME = "tinyos-trap"
_KERNEL_HALF = 1 << 55  # VA bit 55 selects TTBR1: kernel addresses
_MASK64 = (1 << 64) - 1


@dataclass
class _Known:
    """What the unwinder learnt from one ELF: the layout and the call site (None: not ours)."""

    info: object
    layout: TrapFrameLayout | None
    site: TrapSite | None


_known: _Known | None = None


def trap_knowledge() -> tuple[TrapFrameLayout, TrapSite] | None:
    """The trap frame's layout and the entry's call site for the session's kernel, or None
    when the kernel has no such entry (another kernel, no DWARF): then nothing is claimed."""
    global _known
    try:
        info = session().debuginfo()
    except TinyOSError:
        return None
    if _known is None or _known.info is not info:
        try:
            layout = TrapFrameLayout.from_debuginfo(info)
            # The call site is read from the ELF, not from memory: at a stop where the kernel
            # text is not mapped (reset, MMU off) a memory read would fail, and that
            # failure would be remembered for the whole ELF.
            site = TrapSite.from_debuginfo(info, lambda va: struct.unpack("<I", info.initial_bytes(va, 4))[0])
        except (TinyOSError, gdb.error):
            layout, site = None, None
        _known = _Known(info, layout, site)
    return (_known.layout, _known.site) if _known.site is not None else None


def read_trap_frame(layout: TrapFrameLayout, address: int) -> TrapFrame:
    return layout.decode(session().target.read_virtual(address, layout.size), address)


class _FrameId:
    """What gdb identifies a frame by (``gdb.unwinder.FrameId`` exists only from GDB 14;
    GDB 13 wants both as gdb.Value)."""

    def __init__(self, pending: gdb.PendingFrame, sp: int, pc: int) -> None:
        self.sp = _register_value(pending, "sp", sp)
        self.pc = _register_value(pending, "pc", pc)


def _register_value(pending: gdb.PendingFrame, name: str, value: int) -> gdb.Value:
    """``value`` in the register's own type (gdb checks the size: cpsr is 32 bits)."""
    reg_type = pending.read_register(name).type
    size = reg_type.sizeof
    return gdb.Value((value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"), reg_type)


class TrapUnwinder(gdb.unwinder.Unwinder):
    """Claims the exception entry's frame and unwinds it through the saved TrapFrame."""

    def __init__(self) -> None:
        super().__init__(_NAME)

    def __call__(self, pending: gdb.PendingFrame):
        with unwinder_context():
            return self._unwind(pending)

    def _unwind(self, pending: gdb.PendingFrame):
        try:
            pc = int(pending.read_register("pc")) & _MASK64
            if _is_vector_entry(pending, pc):  # the architecture's, whatever the kernel
                return _vector_entry(pending, pc)
            known = trap_knowledge()
            if known is None:
                return None
            layout, site = known
            if pc != site.return_address:
                return None
            # `mov x0, sp; bl tinyos_trap`: at the return address SP is the frame's address.
            frame = read_trap_frame(layout, int(pending.read_register("sp")))
            info = pending.create_unwind_info(_FrameId(pending, frame.address + frame.size, site.entry))
            for name, value in frame.registers().items():
                info.add_saved_register(name, _register_value(pending, name, value))
            return info
        except (TinyOSError, gdb.error):
            return None  # an unreadable stack: let gdb's own unwinders say what they can


# The 16 exception vectors, 0x80 bytes apart from VBAR_EL1 (Arm ARM D1.10.2).
_VECTORS, _VECTOR_SPACING = 16, 0x80
# SPSR.M[3:0] of an exception taken from code running on SP_EL0: EL0t, EL1t.
_ON_SP_EL0 = (0b0000, 0b0100)


def _is_vector_entry(frame: gdb.PendingFrame | gdb.Frame, pc: int) -> bool:
    """Whether ``pc`` is the first instruction of one of the 16 vectors: the exception is
    taken and nothing is saved yet (a stop there is common: an interrupt lands in it)."""
    if pc % _VECTOR_SPACING:  # most pcs: no register read (VBAR_EL1 is 2 KiB aligned)
        return False
    offset = pc - _system_register(frame, "VBAR_EL1")
    return 0 <= offset < _VECTORS * _VECTOR_SPACING


def _system_register(frame: gdb.PendingFrame | gdb.Frame, name: str) -> int:
    """A system register by its architectural name, in whichever spelling the stub uses
    (QEMU says ``VBAR``), unsigned (gdb may type it ``long``); gdb.error when it has none."""
    for spelling in registers.candidates(name):
        try:
            return int(frame.read_register(spelling)) & _MASK64
        except ValueError:  # gdb: "Bad register"
            continue
    raise gdb.error(f"the target has no register {name}")


def _vector_entry(pending: gdb.PendingFrame, pc: int):
    """The interrupted code as the caller, from the live registers the exception set:
    pc = ELR_EL1, cpsr = SPSR_EL1, sp = SP_EL0 when it ran on SP_EL0 (EL0t, EL1t) or the
    current SP (EL1h: nothing pushed yet), x0-x30 untouched."""
    spsr = _system_register(pending, "SPSR_EL1")
    sp = int(pending.read_register("sp")) & _MASK64
    caller_sp = _system_register(pending, "SP_EL0") if spsr & 0xF in _ON_SP_EL0 else sp
    info = pending.create_unwind_info(_FrameId(pending, sp, pc))
    saved = {f"x{i}": int(pending.read_register(f"x{i}")) for i in range(31)}
    saved.update(pc=_system_register(pending, "ELR_EL1"), sp=caller_sp, cpsr=spsr)
    for name, value in saved.items():
        info.add_saved_register(name, _register_value(pending, name, value))
    return info


class _Named(FrameDecorator):
    def __init__(self, base, name: str) -> None:
        super().__init__(base)
        self._name = name

    def function(self):
        return self._name


def trap_description(frame: TrapFrame) -> str:
    """``EL0t: ESR 0x9200004f FAR 0x800000``: where from, and the syndrome."""
    return f"{frame.mode}: ESR {frame.esr:#x} FAR {frame.far:#x}"


def user_frame_name() -> str:
    """``<user pid N>`` for the running process (``<user>`` when the table cannot say)."""
    try:
        current = session().state().processes().current
    except TinyOSError:
        current = None
    return f"<user pid {current.pid}>" if current is not None else "<user>"


class TrapFrameFilter:
    """Names the trap entry and the interrupted user frame; the backtrace ends at user code."""

    def __init__(self) -> None:
        self.name = _NAME
        self.priority = 100
        self.enabled = True

    def filter(self, frames):
        return self._frames(frames)

    def _frames(self, frames):
        after_trap = False
        for level, decorator in enumerate(frames):
            pc = decorator.inferior_frame().pc()
            if level == 0 and _at_el0(decorator):
                yield _Named(decorator, user_frame_name())  # stopped in user code itself
                return
            if after_trap and pc < _KERNEL_HALF:
                yield _Named(decorator, user_frame_name())
                return  # user code: no kernel frames beyond it
            known = trap_knowledge()
            after_trap = known is not None and pc == known[1].return_address
            if after_trap:
                decorator = self._entry(decorator, known[0])
            elif level == 0:
                after_trap = _stopped_at_vector(decorator, pc)
            yield decorator

    @staticmethod
    def _entry(decorator, layout: TrapFrameLayout):
        try:
            sp = int(decorator.inferior_frame().read_register("sp"))
            frame = read_trap_frame(layout, sp)
        except (TinyOSError, gdb.error):
            return decorator
        return _Named(decorator, f"tinyos_trap_entry <{trap_description(frame)}>")


def _stopped_at_vector(decorator, pc: int) -> bool:
    """Whether the newest frame is an exception vector's first instruction."""
    try:
        return _is_vector_entry(decorator.inferior_frame(), pc)
    except (gdb.error, ValueError):
        return False


def _at_el0(decorator) -> bool:
    """Whether the newest frame is user code: PSTATE.EL (cpsr bits [3:2]) is 0."""
    try:
        return (int(decorator.inferior_frame().read_register("cpsr")) >> 2) & 3 == 0
    except (gdb.error, ValueError):
        return False


_registered = False


def register_unwinder() -> None:
    """Install the unwinder and the frame filter once per gdb (replacing an older copy)."""
    global _registered
    if _registered:
        return
    gdb.unwinder.register_unwinder(None, TrapUnwinder(), replace=True)
    gdb.frame_filters[_NAME] = TrapFrameFilter()
    _registered = True
