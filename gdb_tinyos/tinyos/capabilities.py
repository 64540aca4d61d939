"""What a TinyOS kernel offers the debugger, discovered from its ELF's symbols and DWARF.

Every piece is optional: upstream TinyOS has a COW manager but no frame allocator symbol,
no process table and no debugger contract; ours has them all. :func:`discover` looks each
piece up by the suffix of its symbol path (``COW_MANAGER`` finds
``tiny_os_lib::memory::cow::manager::COW_MANAGER``), or by the name a user set with
``set tinyos SETTING SYMBOL``. A command asks :meth:`Capabilities.require` for what it
cannot do without, and :meth:`Capabilities.missing_line` for the one line that says what a
missing piece would have added.

Example::

    caps = discover(info)
    caps.has("process-table")                    # False on an upstream kernel
    caps.missing_line("process-table")           # 'live PTE: no process table in this kernel (...)'
    caps.require("cow-manager", "cow-status")    # Capability(...) or MissingCapability
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..core.address import Address
from ..core.errors import DebugInfoError, LayoutError, MissingCapability, SymbolError
from ..debuginfo import DebugInfo


@dataclass(frozen=True)
class Piece:
    """A kind of capability: the symbol suffix it is found by, what it is, what it adds."""

    name: str
    symbol: str
    what: str
    adds: str
    data: bool = True  # a static with a DWARF layout (else a function or a plain symbol)


PIECES: tuple[Piece, ...] = (
    Piece("cow-manager", "COW_MANAGER", "COW manager", "cow-status, cow-stats, cow-check"),
    Piece("frame-allocator", "FRAME_ALLOCATOR", "frame allocator",
          "RAM bounds and frame reference counts (cow-check's frame rules)"),
    Piece("process-table", "PROCESSES", "process table", "live PTE"),
    Piece("current-process", "CURRENT", "running-process index", "the process on the CPU"),
    Piece("contract", "TINYOS_DEBUG_CONTRACT", "debugger contract",
          "event numbers and bookkeeping conventions from the kernel itself"),
    Piece("event-hook", "tinyos_debug_event", "debug event hook", "cow-trace, tinyos-break", data=False),
    Piece("refusal-record", "LAST_REFUSAL", "refusal record", "the kernel's reason when it refuses a call"),
    Piece("cow-create", "tinyos_cow_create", "entry point", "cow-create", data=False),
    Piece("cow-protect", "tinyos_cow_protect", "entry point", "cow-protect", data=False),
    Piece("cow-unprotect", "tinyos_cow_unprotect", "entry point", "cow-unprotect", data=False),
    Piece("cow-test", "tinyos_cow_run_test", "entry point", "cow-test", data=False),
    Piece("recover", "tinyos_debug_recover", "recovery entry point",
          "rolling back a kernel call cut short by a timeout", data=False),
)
BY_NAME: dict[str, Piece] = {p.name: p for p in PIECES}


@dataclass(frozen=True)
class Capability:
    """One piece as found (``symbol``/``address``) or not (``reason``)."""

    name: str
    what: str
    adds: str
    symbol: str | None = None
    address: Address | None = None
    reason: str = ""

    @property
    def found(self) -> bool:
        return self.symbol is not None


@dataclass(frozen=True)
class Capabilities:
    """Every piece of one kernel ELF, plus its build-id (None when it has no note)."""

    pieces: Mapping[str, Capability]
    build_id: str | None = None

    def has(self, name: str) -> bool:
        return self.pieces[name].found

    def get(self, name: str) -> Capability:
        return self.pieces[name]

    def symbol(self, name: str) -> str:
        """The symbol path of a found piece (MissingCapability otherwise)."""
        return self.require(name).symbol  # type: ignore[return-value]

    def require(self, name: str, purpose: str = "") -> Capability:
        cap = self.pieces[name]
        if not cap.found:
            who = f"{purpose}: " if purpose else ""
            raise MissingCapability(f"{who}no {cap.what} in this kernel ({cap.reason})", name)
        return cap

    def missing_line(self, name: str) -> str | None:
        """``'<adds>: no <what> in this kernel (<why>)'`` for a missing piece, else None."""
        cap = self.pieces[name]
        return None if cap.found else f"{cap.adds}: no {cap.what} in this kernel ({cap.reason})"

    def missing(self) -> list[str]:
        return [p for p, cap in self.pieces.items() if not cap.found]


def discover(info: DebugInfo, overrides: Mapping[str, str] | None = None) -> Capabilities:
    """Look up every piece in ``info``; ``overrides`` maps piece names to symbol names."""
    overrides = overrides or {}
    pieces = {p.name: _find(info, p, overrides.get(p.name) or p.symbol, p.name in overrides) for p in PIECES}
    build_id = info.build_id.hex() if info.build_id else None
    return Capabilities(pieces, build_id)


def _find(info: DebugInfo, piece: Piece, query: str, overridden: bool) -> Capability:
    base = dict(name=piece.name, what=piece.what, adds=piece.adds)
    how = f"`set tinyos {piece.name} {query}`" if overridden else f"no symbol named or ending in {query!r}"
    try:
        if piece.data:
            static = info.static(query)
            return Capability(symbol=static.symbol.path, address=Address(static.address), **base)
        symbol = info.symbol(query)
        return Capability(symbol=symbol.path, address=Address(symbol.address), **base)
    except SymbolError as exc:
        reason = f"{how} names nothing: {exc}" if overridden else how
        return Capability(reason=reason, **base)
    except (LayoutError, DebugInfoError) as exc:
        return Capability(reason=str(exc), **base)
