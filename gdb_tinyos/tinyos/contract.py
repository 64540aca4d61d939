"""The debugger contract's constants, read from the kernel ELF itself.

A kernel that speaks the contract exports ``TINYOS_DEBUG_CONTRACT``: a ``#[repr(C)]``
struct of plain integers whose field names are the constants' names (``event_fork``,
``status_busy``, ``cow_pte_sw_bit``, ``cow_refs_count_owner`` ...). Its initial value is
read from the ELF file through its DWARF layout, so the constants exist before the kernel
runs (at the reset stop) and in core dumps, and cannot drift from the kernel that defines
them. A kernel without it has no contract: events and entry points are then unavailable,
and conventions are detected from the state.

Example::

    contract = read_contract(info, caps)       # {} when the kernel has none
    contract.get("event_fork")                 # 19
"""

from __future__ import annotations

from ..core.errors import CorruptStructure, LayoutError
from ..debuginfo import DebugInfo, decode, plain
from .capabilities import Capabilities


def read_contract(info: DebugInfo, caps: Capabilities) -> dict[str, int]:
    """Every integer field of the contract static, by name ({} when the kernel has none)."""
    if not caps.has("contract"):
        return {}
    static = info.static(caps.symbol("contract"))
    data = info.initial_bytes(static.address, static.layout.size)
    value = plain(decode(static.layout, data, 0, static.symbol.path))
    if not isinstance(value, dict):
        raise LayoutError(f"{static.symbol.path} is not a struct of integers")
    fields = {k: v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}
    if not fields:
        raise CorruptStructure(f"{static.symbol.path} holds no integer field")
    return fields
