"""``set tinyos ...`` / ``show tinyos ...``: symbols and conventions the user names.

The plugin finds a kernel's pieces by symbol suffix and detects its bookkeeping
conventions; where that guesses wrong (another name, a convention the state cannot show),
the user says so here and the kernel model is rebuilt.

Example (inside gdb)::

    (gdb) set tinyos cow-manager my_kernel::mm::SHARED_PAGES
    (gdb) set tinyos cow-refs owner
    (gdb) show tinyos
"""

from __future__ import annotations

import gdb

from ..tinyos.capabilities import PIECES
from ..tinyos.conventions import PIDS_PARALLEL, PIDS_SET, REFS_MAPPINGS, REFS_OWNER, STATISTICS
from . import hostram
from .session import session

# convention -> (parameter name, choices or None for a free list, help)
CONVENTIONS = {
    "refs": ("cow-refs", [REFS_MAPPINGS, REFS_OWNER],
             "What ref_count counts: each mapping, or the owner plus each mapping."),
    "pids": ("cow-pids", [PIDS_PARALLEL, PIDS_SET],
             "process_ids: parallel to virtual_addresses, or a set of sharer pids."),
    "efficiency": ("cow-efficiency", ["refs", "pages"],
                   "Memory Efficiency's denominator: sum of ref_count, or cow_pages_count (upstream)."),
    "maintained": ("cow-stats-maintained", None,
                   "Statistics the kernel maintains, comma-separated: " + ", ".join(STATISTICS) + "."),
}
_REGISTERED: list[object] = []


class _Prefix(gdb.Command):
    """Settings of the gdb_tinyos plugin (tinyos): symbols of the kernel's pieces and its COW conventions."""

    def __init__(self, name: str) -> None:
        super().__init__(name, gdb.COMMAND_DATA, gdb.COMPLETE_NONE, prefix=True)


class SymbolParameter(gdb.Parameter):
    """The symbol (path or suffix) of one piece of the kernel; empty: found by its default suffix."""

    def __init__(self, piece: str, default_symbol: str, what: str) -> None:
        self.piece = piece
        self.set_doc = f"Set the symbol of the kernel's {what} (default: the symbol ending in {default_symbol})."
        self.show_doc = f"Show the symbol of the kernel's {what}."
        super().__init__(f"tinyos {piece}", gdb.COMMAND_DATA, gdb.PARAM_STRING)
        self.value = ""

    def get_set_string(self) -> str:
        value = (self.value or "").strip()
        if value:
            session().symbol_overrides[self.piece] = value
        else:
            session().symbol_overrides.pop(self.piece, None)
        session().settings_changed()
        return ""

    def get_show_string(self, svalue: str) -> str:
        return svalue or "(found by suffix)"


class PhysicalMemoryPath(gdb.Parameter):
    """How the plugin reads guest physical memory.

    auto (default): the fastest verified path -- QEMU's RAM file mapped into gdb, else
    /proc/<qemu pid>/mem, else the gdbstub. shared-ram / proc-mem: only that host path (then
    the gdbstub). gdbstub: always the remote protocol. `tinyos-info` shows the path in use.
    Example: set tinyos physical-memory gdbstub"""

    set_doc = "Set how the plugin reads guest physical memory."
    show_doc = "Show how the plugin reads guest physical memory."

    def __init__(self) -> None:
        super().__init__("tinyos physical-memory", gdb.COMMAND_DATA, gdb.PARAM_ENUM, list(hostram.CHOICES))
        self.value = "auto"

    def get_set_string(self) -> str:
        session().gdb_target.set_preference(self.value)
        session().invalidate()  # this stop's decodes were read the other way
        return ""

    def get_show_string(self, svalue: str) -> str:
        return f"Physical memory is read through: {svalue}"


class ConventionParameter(gdb.Parameter):
    """One bookkeeping convention; ``auto``: from the kernel's contract, else its state."""

    def __init__(self, convention: str, name: str, choices: list[str] | None, doc: str) -> None:
        self.convention = convention
        self.choices = choices
        self.set_doc = f"Set {doc}"
        self.show_doc = f"Show {doc}"
        if choices is None:
            super().__init__(f"tinyos {name}", gdb.COMMAND_DATA, gdb.PARAM_STRING)
        else:
            super().__init__(f"tinyos {name}", gdb.COMMAND_DATA, gdb.PARAM_ENUM, ["auto", *choices])
        self.value = self.accepted = "auto"

    def get_set_string(self) -> str:
        value = (self.value or "auto").strip()
        if self.choices is None and value != "auto":
            unknown = [v for v in value.split(",") if v and v not in STATISTICS]
            if unknown:
                self.value = self.accepted  # a refused value leaves the setting as it was
                raise gdb.GdbError(f"set tinyos: unknown statistic(s) {', '.join(unknown)}; "
                                   f"choose from {', '.join(STATISTICS)}, or auto")
        self.accepted = value
        if value == "auto":
            session().convention_overrides.pop(self.convention, None)
        else:
            session().convention_overrides[self.convention] = value
        session().settings_changed()
        return ""

    def get_show_string(self, svalue: str) -> str:
        return svalue


def register() -> None:
    """Create the ``set/show tinyos`` prefixes and every parameter, once per gdb."""
    if _REGISTERED:
        return
    _REGISTERED.extend([_Prefix("set tinyos"), _Prefix("show tinyos")])
    for piece in PIECES:
        _REGISTERED.append(SymbolParameter(piece.name, piece.symbol, piece.what))
    for convention, (name, choices, doc) in CONVENTIONS.items():
        _REGISTERED.append(ConventionParameter(convention, name, choices, doc))
    _REGISTERED.append(PhysicalMemoryPath())
