"""Pretty printers for the COW types, decoded by gdb_tinyos from raw bytes.

GDB 13.1 aborts ("internal-error ... gdbtypes.h ... Quit this debugging session?") when
its Rust printing meets an array of niche-encoded ``Option<CowPage>`` (facts.md §2), so
``print COW_MANAGER`` killed the session. These printers take over for:

- the manager and whatever wraps it (``CowManager``, ``SpinLock<CowManager>``,
  ``Option<CowManager>``, ``Mutex<Option<CowManager>>``): a summary (lock, slots,
  statistics) and one line per occupied slot, at most ``print elements`` lines;
- the ``cow_pages`` array itself (``[Option<CowPage>; N]``): occupied slots only;
- ``CowPage``, ``Option<CowPage>``, ``CowStatistics``, ``SimpleVec<T>``/``ProcessIdArray``
  (live elements only).

Each printer reads the value's bytes at ``value.address`` through the session's target
and decodes them with the DWARF layouts (:mod:`gdb_tinyos.debuginfo`,
:mod:`gdb_tinyos.tinyos.cow`); it never asks gdb for the value's fields. A value that is not in
target memory, or bytes that do not decode, print as ``<...: why>`` — never an error.

``print`` also needs gdb to fetch the whole value first, and gdb's ``max-value-size``
(64 KiB by default) is smaller than our manager (one slot per RAM frame, ~5.5 MB): when
a kernel with a ``COW_MANAGER`` is loaded, the limit is raised to that size if it is
below (``show max-value-size``).
"""

from __future__ import annotations

import re
from typing import Any

import gdb
import gdb.printing

from ..tinyos.cow import CowManagerState, CowPage, ManagerLocation, decode_manager
from ..debuginfo import EnumValue, StructValue, decode
from ..core.errors import TinyOSError
from ..debuginfo.locate import Found
from .args import unexpected_failure_message
from . import events
from .session import session

PRINTER_NAME = "gdb_tinyos-cow"
_MANAGER = re.compile(r"(^|::|<)CowManager>*$")
_PAGE_OPTION = re.compile(r"^(core::option::)?Option<(.*::)?CowPage>$")
_DECODED = ("CowPage", "CowStatistics", "SimpleVec")  # by name, generics aside


# -- decoding helpers (the session's target, our layouts) ---------------------------------

def _address(val: gdb.Value) -> int:
    if val.address is None:
        raise TinyOSError("not in target memory")
    return int(val.address) & ((1 << 64) - 1)


def _read(address: int, size: int) -> bytes:
    return session().state().target.read_virtual(address, size)


def _location() -> ManagerLocation:
    return session().model().cow_location


def _ram() -> tuple[int, int] | None:
    try:
        return session().state().ram()
    except TinyOSError:
        return None  # allocator not set up yet: decode without the RAM range check


def _type_name(t: gdb.Type) -> str:
    t = t.strip_typedefs()
    return t.name or t.tag or ""


def _short(name: str) -> str:
    head = name.split("<", 1)[0]
    return head.rsplit("::", 1)[-1] + (name[len(head):] if "<" in name else "")


# -- text of decoded values --------------------------------------------------------------

def page_line(page: CowPage) -> str:
    sharers = " ".join(f"va={s.va:#x}/pid={s.pid}" for s in page.sharers) or "no sharers"
    return (f"{page.physical_addr:#x} refs={page.ref_count} cow={'yes' if page.is_cow else 'no'} "
            f"{page.original_permissions} {sharers}")


def value_text(value: Any, type_name: str = "", field: str = "") -> str:
    """A decoded value (debuginfo.decode) as one line; SimpleVec shows its live elements."""
    if isinstance(value, EnumValue):
        if value.payload is None or not value.payload.fields():
            return value.variant
        inner = ", ".join(value_text(v, "", k) for k, v in value.payload.fields().items())
        return f"{value.variant}({inner})"
    if isinstance(value, StructValue):
        fields = value.fields()
        if {"data", "len"} <= set(fields) and isinstance(fields["data"], list):
            live = fields["data"][: fields["len"]]
            hexed = "u64" in value.type_name
            return "[" + ", ".join(hex(v) if hexed else value_text(v) for v in live) + "]"
        inner = ", ".join(f"{k}: {value_text(v, '', k)}" for k, v in fields.items())
        return f"{_short(value.type_name)} {{{inner}}}"
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and ("addr" in field or field in ("pa", "va")):
        return hex(value)
    return str(value)


def manager_text(state: CowManagerState, limit: int | None) -> str:
    lock = {None: "no lock", True: "lock HELD (mid-update?)", False: "lock free"}[state.lock_held]
    head = f"{state.symbol} @ {state.address:#x}: {lock}"
    if not state.initialised:
        return f"{head}, not initialised (None)"
    s = state.statistics
    lines = [
        f"{head}, {state.active_pages}/{state.capacity} slots used, next_process_id {state.next_process_id}",
        f"statistics: cow_pages_count {s.cow_pages_count}, cow_faults_handled {s.cow_faults_handled}, "
        f"pages_duplicated {s.pages_duplicated}, memory_saved_bytes {s.memory_saved_bytes}, "
        f"metadata_memory_bytes {s.metadata_memory_bytes}, peak_cow_pages {s.peak_cow_pages}",
    ]
    lines += _slot_lines(state.pages, limit)
    return "\n".join(lines)


def _slot_lines(pages: tuple[CowPage, ...], limit: int | None) -> list[str]:
    shown = pages if limit is None else pages[:limit]
    lines = [f"  [{p.slot}] {page_line(p)}" for p in shown]
    if len(pages) > len(shown):
        lines.append(f"  ... {len(pages) - len(shown)} more (set print elements, or cow-status --limit 0)")
    return lines


def _print_limit() -> int | None:
    try:
        value = gdb.parameter("print elements")
    except gdb.error:
        return 200
    return None if value in (None, 0) else int(value)


# -- printers ----------------------------------------------------------------------------

class _Printer:
    """Common part: ``to_string`` never raises; decoding errors become ``<...>``."""

    def __init__(self, val: gdb.Value) -> None:
        self.val = val
        self.name = _type_name(val.type)

    def to_string(self) -> str:
        try:
            return self.text()
        except (TinyOSError, gdb.error) as exc:
            return f"<{_short(self.name)}: {exc}>"
        except Exception as exc:  # noqa: BLE001 - a printer is a gdb boundary: a bug must not blank the output
            return f"<{_short(self.name)}: {unexpected_failure_message('printer', exc)}>"

    def text(self) -> str:
        raise NotImplementedError


class ManagerPrinter(_Printer):
    """The COW manager, whatever wraps it (decoded through gdb_tinyos.tinyos.cow)."""

    def text(self) -> str:
        where = _location()
        address = _address(self.val)
        if address in (where.address, where.address + where.found.offset):
            return manager_text(session().state().cow(), _print_limit())  # this stop's one decode
        where = _rebased(where, address, self.val.type.strip_typedefs().sizeof)
        data = _read(where.address, where.size)
        return manager_text(decode_manager(data, where, _ram()), _print_limit())


def _rebased(where: ManagerLocation, address: int, size: int) -> ManagerLocation:
    """The location of a bare ``CowManager`` at ``address`` (not the kernel's static)."""
    if size != where.found.struct.size:
        raise TinyOSError(f"only the kernel's {where.symbol} and bare CowManager values can be decoded")
    shift = where.found.offset
    stats_offset, stats_type = where.statistics
    return ManagerLocation(
        symbol=f"CowManager@{address:#x}", address=address, size=size,
        found=Found(0, where.found.struct, (), None), pages_offset=where.pages_offset - shift,
        page_fields=where.page_fields, statistics=(stats_offset - shift, stats_type))


class SlotsPrinter(_Printer):
    """``[Option<CowPage>; N]``: the occupied slots only."""

    def text(self) -> str:
        where = _location()
        address = _address(self.val)
        if address != where.address + where.pages_offset:
            raise TinyOSError("only the kernel manager's cow_pages array can be decoded")
        state = session().state().cow()
        lines = [f"{len(state.pages)} of {state.capacity} slots occupied"]
        return "\n".join(lines + _slot_lines(state.pages, _print_limit()))


class DecodedPrinter(_Printer):
    """``CowPage``, ``Option<CowPage>``, ``CowStatistics``, ``SimpleVec<T>``: decoded
    with their DWARF layout from the bytes at the value's address."""

    def text(self) -> str:
        layout = session().debuginfo().type(self.name)
        value = decode(layout, _read(_address(self.val), layout.size), 0, self.name)
        return value_text(value, self.name)


def lookup(val: gdb.Value) -> _Printer | None:
    """gdb's printer lookup: our printer for the COW types, None for everything else."""
    t = val.type.strip_typedefs()
    if t.code == gdb.TYPE_CODE_ARRAY:
        return SlotsPrinter(val) if _PAGE_OPTION.match(_type_name(t.target())) else None
    name = _type_name(t)
    if not name:
        return None
    if _MANAGER.search(name):
        return ManagerPrinter(val)
    if _PAGE_OPTION.match(name) or name.split("<", 1)[0].rsplit("::", 1)[-1] in _DECODED:
        return DecodedPrinter(val)
    return None


def raise_max_value_size(_event: Any = None) -> None:
    """Let gdb fetch the COW manager for ``print`` (gdb fetches a value before printing it)."""
    try:
        path = session().model().capabilities.get("cow-manager").symbol
    except TinyOSError:
        return  # no kernel ELF, or no debug info: nothing to size
    symbol = path and (gdb.lookup_static_symbol(path) or gdb.lookup_global_symbol(path))
    if not symbol:
        return
    needed = symbol.type.strip_typedefs().sizeof
    current = gdb.parameter("max-value-size")
    if current is not None and current < needed:  # None: unlimited
        gdb.execute(f"set max-value-size {needed}", to_string=True)


def register() -> None:
    """Install the printers (replacing an earlier copy: loading twice is harmless)."""
    gdb.printing.register_pretty_printer(None, lookup, replace=True)
    events.on("new_objfile", raise_max_value_size)  # once: the hub keeps one of each listener
    raise_max_value_size()


lookup.name = PRINTER_NAME  # gdb's `info pretty-printer` and replace=True go by name
lookup.enabled = True
register()
