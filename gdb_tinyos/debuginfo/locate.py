"""Find a kernel struct inside whatever wraps it in its static, from DWARF alone.

A kernel keeps its state behind wrappers — a ``SpinLock<T>`` (lock word + ``UnsafeCell``),
an ``Option<T>``, both, or none. :func:`find_struct` walks struct members and enum variants
depth-first to the first struct the predicate accepts, and records what must be checked
on the bytes (which enum variant must be active) and the first lock word met on the way.

Example::

    found = find_struct(info.static("COW_MANAGER").layout, lambda s: has_members(s, "cow_pages"))
    offset, manager = found.offset, found.struct
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .layouts import BaseType, RustEnumType, StructType, Type, Variant
from ..core.errors import CorruptStructure, LayoutError

_LOCK_NAMES = ("locked", "lock")
_MAX_DEPTH = 8


@dataclass(frozen=True)
class VariantCheck:
    """On the way to the struct, the enum at ``offset`` must hold ``variant``."""

    offset: int
    layout: RustEnumType
    variant: Variant


@dataclass(frozen=True)
class Found:
    offset: int
    struct: StructType
    checks: tuple[VariantCheck, ...]
    lock_offset: int | None

    def present(self, data: bytes, what: str) -> bool:
        """Whether every enum on the way holds the variant leading to the struct (False
        for e.g. an ``Option`` holding ``None``); CorruptStructure when one selects none."""
        for check in self.checks:
            active = check.layout.variant_for(data[check.offset : check.offset + check.layout.size])
            if active is None:
                raise CorruptStructure(f"{what}: {check.layout.name} at +{check.offset:#x} selects no variant")
            if active.name != check.variant.name:
                return False
        return True

    def lock_held(self, data: bytes, what: str) -> bool | None:
        """The lock word's state, None when no lock wraps the struct."""
        if self.lock_offset is None:
            return None
        value = data[self.lock_offset]
        if value > 1:
            raise CorruptStructure(f"{what}: lock word at +{self.lock_offset:#x} holds {value}, not 0 or 1")
        return bool(value)

    def member_int(self, data: bytes, name: str) -> int:
        """Member ``name`` of the found struct as an unsigned integer, from the static's bytes."""
        offset, t = member(self.struct, name)
        return uint(data, self.offset + offset, t.size)


def uint(data: bytes, at: int, size: int) -> int:
    """The little-endian unsigned ``size``-byte integer at ``at``."""
    return int.from_bytes(data[at : at + size], "little")


def has_members(t: Type, *names: str) -> bool:
    return isinstance(t, StructType) and all(any(m.name == n for m in t.members) for n in names)


def find_struct(root: Type, accept: Callable[[StructType], bool], what: str) -> Found:
    """The first struct under ``root`` that ``accept`` takes; LayoutError naming ``what``."""
    found = _search(root, accept, 0, (), None, 0)
    if found is None:
        raise LayoutError(f"{what} ({root.name}) holds no struct of the expected shape")
    return found


def member(struct: StructType, name: str) -> tuple[int, Type]:
    """Offset and (typedef-stripped) type of a member; LayoutError when absent."""
    m = struct.member(name)
    return m.offset, m.type.strip_typedefs()


def _search(t: Type, accept, offset: int, checks: tuple, lock: int | None, depth: int) -> Found | None:
    t = t.strip_typedefs()
    if isinstance(t, StructType) and not t.is_union and accept(t):
        return Found(offset, t, checks, lock)
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(t, RustEnumType):
        for v in t.variants:
            found = _search(v.payload, accept, offset, checks + (VariantCheck(offset, t, v),), lock, depth + 1)
            if found:
                return found
    elif isinstance(t, StructType) and not t.is_union:
        if lock is None:
            lock = next((offset + m.offset + _value_offset(m.type) for m in t.members
                         if m.name in _LOCK_NAMES and _is_lock_word(m.type)), None)
        for m in t.members:
            found = _search(m.type, accept, offset + m.offset, checks, lock, depth + 1)
            if found:
                return found
    return None


def _is_lock_word(t: Type) -> bool:
    t = t.strip_typedefs()
    if isinstance(t, BaseType):
        return t.encoding in ("boolean", "unsigned", "signed")
    # AtomicBool / AtomicU32 wrap the value in an UnsafeCell: follow single members.
    return isinstance(t, StructType) and len(t.members) == 1 and _is_lock_word(t.members[0].type)


def _value_offset(t: Type) -> int:
    t, off = t.strip_typedefs(), 0
    while isinstance(t, StructType):
        off += t.members[0].offset
        t = t.members[0].type.strip_typedefs()
    return off
