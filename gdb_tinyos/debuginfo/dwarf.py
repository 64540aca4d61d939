"""Reading DWARF with pyelftools: a name index of statics and types, and DIE -> layout.

The index walks only namespace trees (never function bodies) and, first, only the
compilation units of the program itself: the standard library's units (``core``,
``compiler_builtins``, compiled from source by build-std) are scanned on a miss only.
Types are converted one DIE at a time, when asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from elftools.common.exceptions import DWARFError, ELFParseError
from elftools.dwarf.compileunit import CompileUnit
from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo

from ..core.errors import LayoutError
from .layouts import (
    ArrayType, BaseType, Enumerator, EnumType, Member, OpaqueType, PointerType,
    RustEnumType, StructType, Type, TypedefType, Variant,
)
from .symbols import is_suffix, split_path

# A compilation unit of the Rust standard library, as build-std or a toolchain names it.
_LIBRARY_CU = re.compile(r"(/rustlib/src/rust/library/|^/rustc/[0-9a-f]+/library/)")
_TYPE_TAGS = {
    "DW_TAG_base_type", "DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_class_type",
    "DW_TAG_enumeration_type", "DW_TAG_typedef",
}
_POINTER_TAGS = {"DW_TAG_pointer_type", "DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"}
_TRANSPARENT_TAGS = {"DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_atomic_type", "DW_TAG_restrict_type"}
_ENCODINGS = {1: "unsigned", 2: "boolean", 4: "float", 5: "signed", 6: "signed", 7: "unsigned", 8: "unsigned", 16: "char"}
_REF_FORMS = {"DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8", "DW_FORM_ref_udata"}
_DW_OP_ADDR = 0x03
_DW_OP_PLUS_UCONST = 0x23
_DW_DSC_RANGE = 1
# Exceptions pyelftools raises on malformed input: callers of pyelftools catch these and
# raise a typed error (LayoutError for one type, DebugInfoError for the whole ELF).
PARSE_ERRORS = (DWARFError, ELFParseError, KeyError, IndexError, ValueError, AssertionError)


@dataclass(frozen=True)
class StaticEntry:
    path: str
    address: int
    linkage_name: str | None
    type_offset: int | None


@dataclass
class DwarfIndex:
    """Paths of statics and named types, to DIE offsets (cached as JSON, debuginfo/cache.py)."""

    statics: dict[str, StaticEntry] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    library_scanned: bool = False

    def find_type(self, query: str) -> int | None:
        """DIE offset of the type with path ``query`` or the unique path ending in it.

        Raises LayoutError when several distinct paths end in ``query``."""
        if query in self.types:
            return self.types[query]
        wanted = split_path(query)
        found = sorted(p for p in self.types if is_suffix(wanted, split_path(p)))
        if len(found) > 1:
            shown = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
            raise LayoutError(f"type {query!r} is ambiguous: it matches {shown}; give more of the path")
        return self.types[found[0]] if found else None


def is_library_unit(cu: CompileUnit) -> bool:
    name = cu.get_top_DIE().attributes.get("DW_AT_name")
    return bool(name) and bool(_LIBRARY_CU.search(_text(name.value)))


def build_index(dwarf: DWARFInfo, library: bool, index: DwarfIndex | None = None) -> DwarfIndex:
    """Add the statics and types of the program's units (``library=False``) or of the
    standard library's (``library=True``) to ``index``."""
    index = index or DwarfIndex()
    for cu in dwarf.iter_CUs():
        if is_library_unit(cu) == library:
            _index_children(cu.get_top_DIE(), [], index)
    if library:
        index.library_scanned = True
    return index


def _index_children(parent: DIE, names: list[str], index: DwarfIndex) -> None:
    for die in parent.iter_children():
        name_attr = die.attributes.get("DW_AT_name")
        if die.tag == "DW_TAG_namespace":
            _index_children(die, names + [_text(name_attr.value) if name_attr else "{anon}"], index)
            continue
        if name_attr is None:
            continue
        path = "::".join(names + [_text(name_attr.value)])
        if die.tag == "DW_TAG_variable":
            address = _static_address(die)
            if address is not None and path not in index.statics:
                linkage = die.attributes.get("DW_AT_linkage_name")
                index.statics[path] = StaticEntry(
                    path, address, _text(linkage.value) if linkage else None, ref_offset(die, "DW_AT_type"))
        elif die.tag in _TYPE_TAGS and "DW_AT_declaration" not in die.attributes:
            index.types.setdefault(path, die.offset)


def _static_address(die: DIE) -> int | None:
    loc = die.attributes.get("DW_AT_location")
    if loc is None or not isinstance(loc.value, list) or len(loc.value) != 9 or loc.value[0] != _DW_OP_ADDR:
        return None
    return int.from_bytes(bytes(loc.value[1:]), "little")


def ref_offset(die: DIE, attr: str) -> int | None:
    """The absolute .debug_info offset a reference attribute points at."""
    a = die.attributes.get(attr)
    if a is None:
        return None
    if a.form in _REF_FORMS:
        return die.cu.cu_offset + a.raw_value
    if a.form == "DW_FORM_ref_addr":
        return a.raw_value
    raise LayoutError(f"DIE {die.offset:#x}: {attr} uses unsupported form {a.form}")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class LayoutReader:
    """Converts DIEs to :mod:`layouts` objects, memoised by DIE offset in ``memo``."""

    def __init__(self, dwarf: DWARFInfo, memo: dict[int, Type]) -> None:
        self.dwarf = dwarf
        self.memo = memo
        self._in_progress: set[int] = set()

    def layout_at(self, offset: int) -> Type:
        if offset in self.memo:
            return self.memo[offset]
        if offset in self._in_progress:
            raise LayoutError(f"DIE {offset:#x} contains itself (a type cycle not broken by a pointer)")
        self._in_progress.add(offset)
        try:
            try:
                layout = self._convert(self.dwarf.get_DIE_from_refaddr(offset))
            except PARSE_ERRORS as exc:
                raise LayoutError(f"unreadable DWARF type at .debug_info offset {offset:#x}: {exc}") from exc
        finally:
            self._in_progress.discard(offset)
        self.memo[offset] = layout
        return layout

    def _type_of(self, die: DIE) -> Type | None:
        target = ref_offset(die, "DW_AT_type")
        return None if target is None else self.layout_at(target)

    def _convert(self, die: DIE) -> Type:
        tag = die.tag
        if tag == "DW_TAG_base_type":
            return self._base(die)
        if tag in _POINTER_TAGS or tag == "DW_TAG_ptr_to_member_type":
            return self._pointer(die)
        if tag in ("DW_TAG_structure_type", "DW_TAG_class_type", "DW_TAG_union_type"):
            return self._struct(die)
        if tag == "DW_TAG_array_type":
            return self._array(die)
        if tag == "DW_TAG_enumeration_type":
            return self._enum(die)
        if tag == "DW_TAG_typedef":
            target = self._type_of(die) or OpaqueType("void", 0, 1, "void")
            return TypedefType(_name(die), target.size, target.align, target)
        if tag in _TRANSPARENT_TAGS:
            return self._type_of(die) or OpaqueType("void", 0, 1, "void")
        if tag in ("DW_TAG_subroutine_type", "DW_TAG_unspecified_type"):
            return OpaqueType(_name(die) or "fn", _int(die, "DW_AT_byte_size", 0), 1, tag)
        raise LayoutError(f"DIE {die.offset:#x} ({tag} {_name(die)!r}) is not a type the decoder knows")

    def _base(self, die: DIE) -> BaseType:
        size = _int(die, "DW_AT_byte_size", 0)
        encoding = _ENCODINGS.get(_int(die, "DW_AT_encoding", 0), "unsigned")
        if size == 0:
            encoding = "unit"
        return BaseType(_name(die), size, _int(die, "DW_AT_alignment", max(size, 1)), encoding)

    def _pointer(self, die: DIE) -> PointerType:
        target = ref_offset(die, "DW_AT_type")
        target_name = "void"
        if target is not None:
            target_name = _name(self.dwarf.get_DIE_from_refaddr(target)) or "?"
        size = _int(die, "DW_AT_byte_size", die.cu["address_size"])
        return PointerType(_name(die) or f"*{target_name}", size, _int(die, "DW_AT_alignment", size), target_name, target)

    def _struct(self, die: DIE) -> Type:
        name = _name(die)
        if "DW_AT_declaration" in die.attributes:
            raise LayoutError(f"{name or 'a struct'} (DIE {die.offset:#x}) is only declared here, not defined")
        size = _int(die, "DW_AT_byte_size", 0)
        children = list(die.iter_children())
        variant_part = next((c for c in children if c.tag == "DW_TAG_variant_part"), None)
        if variant_part is not None:
            return self._rust_enum(die, variant_part)
        members = tuple(self._member(c) for c in children if c.tag == "DW_TAG_member")
        align = _int(die, "DW_AT_alignment", max((m.type.align for m in members), default=1))
        return StructType(name, size, align, members, die.tag == "DW_TAG_union_type")

    def _member(self, die: DIE) -> Member:
        mtype = self._type_of(die)
        if mtype is None:
            raise LayoutError(f"member {_name(die)!r} (DIE {die.offset:#x}) has no type")
        bit_offset = die.attributes.get("DW_AT_data_bit_offset")
        offset = _member_offset(die)
        if bit_offset is not None and offset is None:
            offset = bit_offset.value // 8
        bit_size = die.attributes.get("DW_AT_bit_size")
        return Member(
            _name(die), offset or 0, mtype,
            bit_size.value if bit_size else None, bit_offset.value if bit_offset else None,
        )

    def _rust_enum(self, die: DIE, part: DIE) -> RustEnumType:
        name = _name(die)
        discr_die = None
        discr_ref = ref_offset(part, "DW_AT_discr")
        if discr_ref is not None:
            discr_die = self.dwarf.get_DIE_from_refaddr(discr_ref)
        discr_offset, discr_size, signed = None, 0, False
        if discr_die is not None:
            dtype = self._type_of(discr_die)
            if dtype is None:
                raise LayoutError(f"{name}: discriminant member has no type")
            dtype = dtype.strip_typedefs()
            discr_offset = _member_offset(discr_die) or 0
            discr_size = dtype.size
            signed = getattr(dtype, "encoding", "") == "signed" or getattr(dtype, "signed", False)
        variants = []
        for v in part.iter_children():
            if v.tag != "DW_TAG_variant":
                continue
            arm = next((c for c in v.iter_children() if c.tag == "DW_TAG_member"), None)
            if arm is None:
                raise LayoutError(f"{name}: a variant (DIE {v.offset:#x}) has no member")
            payload = self._type_of(arm)
            if not isinstance(payload, StructType):
                raise LayoutError(f"{name}::{_name(arm)}: payload is {type(payload).__name__}, not a struct")
            variants.append(Variant(_name(arm), _discr_ranges(v, discr_size, signed), payload, _member_offset(arm) or 0))
        size = _int(die, "DW_AT_byte_size", 0)
        align = _int(die, "DW_AT_alignment", max((v.payload.align for v in variants), default=1))
        return RustEnumType(name, size, align, discr_offset, discr_size, signed, tuple(variants))

    def _array(self, die: DIE) -> ArrayType:
        element = self._type_of(die)
        if element is None:
            raise LayoutError(f"array DIE {die.offset:#x} has no element type")
        dims = []
        for sub in die.iter_children():
            if sub.tag != "DW_TAG_subrange_type":
                continue
            if "DW_AT_count" in sub.attributes:
                dims.append(_int(sub, "DW_AT_count", 0))
            elif "DW_AT_upper_bound" in sub.attributes:
                dims.append(_int(sub, "DW_AT_upper_bound", -1) - _int(sub, "DW_AT_lower_bound", 0) + 1)
            else:
                dims.append(0)  # flexible array member: no length in DWARF
        dims = dims or [0]
        total = element.size
        for d in dims:
            total *= d
        size = _int(die, "DW_AT_byte_size", total)
        name = _name(die) or f"[{element.name}; {'; '.join(map(str, dims))}]"
        return ArrayType(name, size, _int(die, "DW_AT_alignment", element.align), element, tuple(dims))

    def _enum(self, die: DIE) -> EnumType:
        size = _int(die, "DW_AT_byte_size", 0)
        base = self._type_of(die)
        values = [(_name(c), _int(c, "DW_AT_const_value", 0)) for c in die.iter_children() if c.tag == "DW_TAG_enumerator"]
        signed = (base is not None and getattr(base.strip_typedefs(), "encoding", "") == "signed") or any(v < 0 for _, v in values)
        enumerators = tuple(Enumerator(n, _normalise(v, size, signed)) for n, v in values)
        return EnumType(_name(die), size, _int(die, "DW_AT_alignment", max(size, 1)), signed, enumerators)


def _name(die: DIE) -> str:
    a = die.attributes.get("DW_AT_name")
    return _text(a.value) if a else ""


def _int(die: DIE, attr: str, default: int) -> int:
    a = die.attributes.get(attr)
    if a is None or not isinstance(a.value, int):
        return default
    return a.value


def _member_offset(die: DIE) -> int | None:
    a = die.attributes.get("DW_AT_data_member_location")
    if a is None:
        return None
    if isinstance(a.value, int):
        return a.value
    ops = list(a.value)
    if ops and ops[0] == _DW_OP_PLUS_UCONST:
        value, _ = _uleb(bytes(ops[1:]), 0)
        return value
    raise LayoutError(f"member {_name(die)!r}: location expression {ops} is not a constant offset")


def _normalise(value: int, size: int, signed: bool) -> int:
    """``value`` as the discriminant field of ``size`` bytes reads it (sign included)."""
    if size <= 0:
        return value
    bits = 8 * size
    value &= (1 << bits) - 1
    if signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _discr_ranges(variant: DIE, size: int, signed: bool) -> tuple[tuple[int, int], ...] | None:
    value = variant.attributes.get("DW_AT_discr_value")
    if value is not None:
        v = value.value
        if isinstance(v, list):  # a block: the value's bytes
            v = int.from_bytes(bytes(v), "little", signed=signed)
        n = _normalise(v, size, signed)
        return ((n, n),)
    listed = variant.attributes.get("DW_AT_discr_list")
    if listed is not None:
        return tuple(_parse_discr_list(bytes(listed.value), size, signed))
    return None


def _parse_discr_list(block: bytes, size: int, signed: bool) -> Iterator[tuple[int, int]]:
    """DW_AT_discr_list: DW_DSC_label value | DW_DSC_range low high, LEB128 encoded."""
    pos = 0
    read = _sleb if signed else _uleb
    while pos < len(block):
        kind = block[pos]
        lo, pos = read(block, pos + 1)
        hi = lo
        if kind == _DW_DSC_RANGE:
            hi, pos = read(block, pos)
        yield _normalise(lo, size, signed), _normalise(hi, size, signed)


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise LayoutError("truncated LEB128 number in DWARF")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    start = pos
    value, pos = _uleb(data, pos)
    bits = 7 * (pos - start)
    if data[pos - 1] & 0x40:
        value -= 1 << bits
    return value, pos
