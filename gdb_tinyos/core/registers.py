"""Register naming shared by every target: canonical names in, the backend's own names out.

Decoders ask for architectural names (``SCTLR_EL1``, ``TTBR1_EL1``, ``cpsr``); QEMU's
gdbstub calls some of them differently (``SCTLR``, ``VBAR``), a core dump carries only the
general registers. :func:`candidates` lists the names to try, in order, for a canonical one.

Example::

    assert candidates("SCTLR_EL1") == ("SCTLR_EL1", "SCTLR")
    assert resolve("sctlr_el1", {"SCTLR", "pc"}) == "SCTLR"
"""

from __future__ import annotations

from collections.abc import Collection

# Canonical name -> other spellings a backend may use (QEMU 7.2's gdbstub drops the _EL1
# suffix for these two; PSTATE is "cpsr" to gdb).
ALIASES: dict[str, tuple[str, ...]] = {
    "SCTLR_EL1": ("SCTLR",),
    "VBAR_EL1": ("VBAR",),
    "cpsr": ("PSTATE", "pstate"),
}

# The system registers a translation-table walk or a fault report needs: what
# ``tinyos-dump`` saves beside a core, because QEMU's aarch64 core notes lack them.
SYSTEM_REGISTERS: tuple[str, ...] = (
    "TTBR0_EL1",
    "TTBR1_EL1",
    "TCR_EL1",
    "SCTLR_EL1",
    "MAIR_EL1",
    "VBAR_EL1",
    "ESR_EL1",
    "FAR_EL1",
    "ELR_EL1",
    "SPSR_EL1",
)

GENERAL_REGISTERS: tuple[str, ...] = tuple(f"x{i}" for i in range(31)) + ("sp", "pc", "cpsr")


def candidates(name: str) -> tuple[str, ...]:
    """The canonical name first, then its aliases (also when ``name`` is itself an alias)."""
    for canonical, others in ALIASES.items():
        if name == canonical or name in others:
            return (canonical, *others)
    return (name,)


def resolve(name: str, available: Collection[str]) -> str | None:
    """The backend's spelling of ``name`` among ``available``, or None.

    Exact spellings win; a case-insensitive match is the last resort (``ttbr0_el1``)."""
    names = candidates(name)
    for n in names:
        if n in available:
            return n
    folded = {a.lower(): a for a in available}
    for n in names:
        if n.lower() in folded:
            return folded[n.lower()]
    return None


def canonical(name: str) -> str:
    """The canonical spelling of a register name (``SCTLR`` -> ``SCTLR_EL1``)."""
    return candidates(name)[0]
