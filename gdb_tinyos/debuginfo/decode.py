"""Raw bytes + a DWARF layout -> Python values, with errors that say where and why.

Integers and pointers become ``int``, ``bool`` a Python bool (any byte but 0/1 is an
error), ``char`` a ``str``, arrays lists, structs :class:`StructValue` (attribute and key
access), enums :class:`EnumValue` (the variant's name plus its payload), unions and
opaque types :class:`RawValue`. Nothing about Option or any other type is special-cased:
the variant comes from the layout's discriminant rules.

Example::

    manager = decode(info.type("memory::cow::CowManager"), raw)
    first = manager.cow_pages[0]
    if first.variant == "Some":
        print(hex(first.__0.physical_addr))
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from ..core.errors import CorruptStructure
from .layouts import (
    ArrayType, BaseType, EnumType, Member, OpaqueType, PointerType, RustEnumType, StructType, Type, TypedefType,
)


class DecodeError(CorruptStructure):
    """Bytes that no value of the layout can hold: ``type_name`` at ``path``, ``offset``."""

    def __init__(self, message: str, type_name: str, path: str, offset: int) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.path = path
        self.offset = offset


class StructValue:
    """A decoded struct: ``v.field``, ``v["field"]``, iteration over field names."""

    __slots__ = ("_type_name", "_fields")

    def __init__(self, type_name: str, fields: dict[str, Any]) -> None:
        self._type_name = type_name
        self._fields = fields

    @property
    def type_name(self) -> str:
        return self._type_name

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"{self._type_name} has no field {name!r}") from None

    def __getitem__(self, name: str) -> Any:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StructValue) and self._type_name == other._type_name and self._fields == other._fields

    def __hash__(self) -> int:
        return hash(self._type_name)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"{self._type_name}({inner})"

    def fields(self) -> dict[str, Any]:
        return dict(self._fields)


@dataclass(frozen=True)
class EnumValue:
    """A decoded enum. ``discriminant`` is the raw tag/niche value read (None when the
    enum has no discriminant field); ``payload`` the variant's fields (None for C-like
    enums). Payload fields are also readable as attributes: ``opt.__0``."""

    type_name: str
    variant: str
    discriminant: int | None
    payload: StructValue | None = None

    def __getattr__(self, name: str) -> Any:
        payload = self.__dict__.get("payload")
        if payload is not None and name in payload._fields:
            return payload._fields[name]
        raise AttributeError(f"{self.__dict__.get('type_name')}::{self.__dict__.get('variant')} has no field {name!r}")


@dataclass(frozen=True)
class RawValue:
    """Bytes the decoder does not interpret (unions, function types)."""

    type_name: str
    data: bytes


def decode(layout: Type, data: bytes, offset: int = 0, path: str = "") -> Any:
    """Decode ``layout.size`` bytes of ``data`` starting at ``offset``.

    ``path`` names the value in error messages (defaults to the type's name). Raises
    DecodeError (a CorruptStructure) for too few bytes, a bool other than 0/1, an enum
    value no variant claims, or an invalid ``char``."""
    path = path or layout.name or "value"
    if offset < 0 or len(data) - offset < layout.size:
        raise DecodeError(
            f"{path}: {layout.name} needs {layout.size} bytes at offset {offset}, only {max(len(data) - offset, 0)} given",
            layout.name, path, offset,
        )
    return _decode(layout, memoryview(data).toreadonly(), offset, path)


def decode_rows(layout: ArrayType, data: bytes, offset: int = 0, path: str = "",
                members: Iterable[str] | None = None) -> list[Any]:
    """:func:`decode` of an array, each struct row holding only ``members`` (those it has;
    None: all): a reader of a few fields of a table leaves the rest undecoded."""
    row = layout.row().strip_typedefs()
    if members is None or not isinstance(row, StructType) or row.is_union:
        return decode(layout, data, offset, path)
    path = path or layout.name or "value"
    if offset < 0 or len(data) - offset < layout.size:
        return decode(layout, data, offset, path)  # its error names what is missing
    view = memoryview(data).toreadonly()
    wanted, plan = _row_plan(layout, row, frozenset(members))
    if plan is None or len(data) - offset < layout.count * row.size:
        # no plan, or rows the bytes do not hold (an array's size at odds with its count):
        # row by row, each member checking that it lies inside the bytes
        return [_struct(wanted, view, offset + i * row.size, f"{path}[{i}]") for i in range(layout.count)]
    words, template = plan
    return [StructValue(wanted.name, _fields(template, words.unpack_from(view, at), view, at, f"{path}[{i}]"))
            for i, at in enumerate(range(offset, offset + layout.count * row.size, row.size))]


# A row plan: the integer members of a row (nested plain structs' included) unpacked by one
# precompiled struct, the rest decoded as _struct would. By (array layout, members asked),
# the layout kept alive with it so that its id is not reused.
_PLANS: dict[tuple[int, frozenset[str]], tuple[ArrayType, StructType, tuple[struct.Struct, tuple] | None]] = {}
_INT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _row_plan(layout: ArrayType, row: StructType,
              members: frozenset[str]) -> tuple[StructType, tuple[struct.Struct, tuple] | None]:
    """The row type holding ``members`` only, and its plan; None when the rows must be
    decoded one by one with _struct (zero-sized rows; a member past the row's end: its
    error names it)."""
    key = (id(layout), members)
    if key not in _PLANS:
        wanted = replace(row, members=tuple(m for m in row.members if m.name in members))
        codes: list[tuple[int, str]] = []
        template = _template(wanted, 0, codes) if row.size > 0 else None
        _PLANS[key] = (layout, wanted, None if template is None else _plan(codes, template))
    return _PLANS[key][1], _PLANS[key][2]


def _template(layout: StructType, base: int, codes: list[tuple[int, str]]) -> tuple | None:
    """``(name, how)`` for each member: for an integer, its index in ``codes`` (where its
    offset from the row's start and its struct code are appended); for a nested struct, a
    ``(type name, template)`` pair; for anything else, ``(type, offset)`` for _decode (a
    bit field: ``(member, its struct's offset)`` for _bits). None when a member lies
    outside the layout."""
    entries = []
    for m in layout.members:
        t, at = m.type.strip_typedefs(), base + m.offset
        if m.offset < 0 or m.offset + m.type.size > layout.size:
            return None
        code = _int_code(t) if m.bit_size is None else None
        if code is not None:
            entries.append((m.name, len(codes)))
            codes.append((at, code))
        elif isinstance(t, StructType) and not t.is_union and m.bit_size is None:
            nested = _template(t, at, codes)
            if nested is None:
                return None
            entries.append((m.name, (t.name, nested)))
        else:
            entries.append((m.name, (m.type, at) if m.bit_size is None else (m, at - m.offset)))
    return tuple(entries)


def _int_code(t: Type) -> str | None:
    """The struct code of a plain unsigned/signed integer or pointer (as _base/_decode
    read them: little-endian, 1/2/4/8 bytes), else None."""
    if isinstance(t, PointerType) or (isinstance(t, BaseType) and t.encoding in ("unsigned", "signed")):
        code = _INT_CODES.get(t.size)
        if code is not None:
            return code.lower() if isinstance(t, BaseType) and t.encoding == "signed" else code
    return None


def _plan(codes: list[tuple[int, str]], template: tuple) -> tuple[struct.Struct, tuple] | None:
    """One struct over the codes in offset order (pad bytes between), the template's indexes
    renumbered to that order; None when two overlap (not a plain struct)."""
    order = sorted(range(len(codes)), key=lambda k: codes[k][0])
    fmt, end = "<", 0
    for k in order:
        at, code = codes[k]
        if at < end:
            return None
        fmt += f"{at - end}x{code}" if at > end else code
        end = at + struct.calcsize(code)
    position = {k: n for n, k in enumerate(order)}
    return struct.Struct(fmt), _renumbered(template, position)


def _renumbered(template: tuple, position: dict[int, int]) -> tuple:
    entries = []
    for name, how in template:
        if type(how) is int:
            how = position[how]
        elif type(how[1]) is tuple:
            how = (how[0], _renumbered(how[1], position))
        entries.append((name, how))
    return tuple(entries)


def _fields(template: tuple, values: tuple[int, ...], view: memoryview, at: int, path: str) -> dict[str, Any]:
    """A row's fields from its unpacked integers and ``template`` (see _template)."""
    fields = {}
    for name, how in template:
        if type(how) is int:
            fields[name] = values[how]
        elif type(how[1]) is tuple:
            fields[name] = StructValue(how[0], _fields(how[1], values, view, at, f"{path}.{name}"))
        elif isinstance(how[0], Member):
            member, base = how
            fields[name] = _bits(member.bit_offset or 0, member.bit_size, view, at + base)
        else:
            fields[name] = _decode(how[0], view, at + how[1], f"{path}.{name}")
    return fields


def _decode(layout: Type, data: memoryview, offset: int, path: str) -> Any:
    if isinstance(layout, TypedefType):
        return _decode(layout.target, data, offset, path)
    if isinstance(layout, BaseType):
        return _base(layout, data, offset, path)
    if isinstance(layout, PointerType):
        return int.from_bytes(data[offset : offset + layout.size], "little")
    if isinstance(layout, EnumType):
        return _c_enum(layout, data, offset, path)
    if isinstance(layout, RustEnumType):
        return _rust_enum(layout, data, offset, path)
    if isinstance(layout, ArrayType):
        return _array(layout, data, offset, path)
    if isinstance(layout, StructType) and not layout.is_union:
        return _struct(layout, data, offset, path)
    if isinstance(layout, (StructType, OpaqueType)):
        return RawValue(layout.name, bytes(data[offset : offset + layout.size]))
    raise DecodeError(f"{path}: no decoder for {type(layout).__name__}", layout.name, path, offset)


def _base(layout: BaseType, data: memoryview, offset: int, path: str) -> Any:
    raw = data[offset : offset + layout.size]
    enc = layout.encoding
    if enc == "unit":
        return None
    if enc == "float":
        if layout.size not in (4, 8):
            raise DecodeError(f"{path}: {layout.size}-byte float is not supported", layout.name, path, offset)
        return struct.unpack("<f" if layout.size == 4 else "<d", raw)[0]
    value = int.from_bytes(raw, "little", signed=enc == "signed")
    if enc == "boolean":
        if value > 1:
            raise DecodeError(
                f"{path}: bool at offset {offset:#x} holds {value:#x}, not 0 or 1", layout.name, path, offset)
        return bool(value)
    if enc == "char":
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise DecodeError(
                f"{path}: char at offset {offset:#x} holds {value:#x}, not a Unicode scalar value", layout.name, path, offset)
        return chr(value)
    return value


def _c_enum(layout: EnumType, data: memoryview, offset: int, path: str) -> EnumValue:
    value = int.from_bytes(data[offset : offset + layout.size], "little", signed=layout.signed)
    name = layout.name_of(value)
    if name is None:
        legal = ", ".join(f"{e.name}={e.value}" for e in layout.enumerators)
        raise DecodeError(
            f"{path}: {layout.name} at offset {offset:#x} holds {value}, which is no variant ({legal})",
            layout.name, path, offset)
    return EnumValue(layout.name, name, value)


def _rust_enum(layout: RustEnumType, data: memoryview, offset: int, path: str) -> EnumValue:
    discr = layout.discriminant(data, offset)
    variant = layout.select(discr)
    if variant is None:
        raise DecodeError(
            f"{path}: {layout.name} discriminant at offset {offset + (layout.discr_offset or 0):#x} holds {discr}, "
            f"which selects no variant ({', '.join(v.name for v in layout.variants) or 'none'})",
            layout.name, path, offset)
    payload = _struct(variant.payload, data, offset + variant.offset, f"{path}.{variant.name}")
    return EnumValue(layout.name, variant.name, discr, payload)


def _array(layout: ArrayType, data: memoryview, offset: int, path: str) -> list[Any]:
    row = layout.row()
    if row.size == 0:
        return [_decode(row, data, offset, f"{path}[{i}]") for i in range(layout.count)]
    return [_decode(row, data, offset + i * row.size, f"{path}[{i}]") for i in range(layout.count)]


def _struct(layout: StructType, data: memoryview, offset: int, path: str) -> StructValue:
    fields = {}
    for m in layout.members:
        where = offset + m.offset
        if where + m.type.size > len(data):
            raise DecodeError(f"{path}.{m.name}: member lies outside the bytes given", layout.name, path, where)
        if m.bit_size is not None:
            fields[m.name] = _bits(m.bit_offset or 0, m.bit_size, data, offset)
        else:
            fields[m.name] = _decode(m.type, data, where, f"{path}.{m.name}")
    return StructValue(layout.name, fields)


def _bits(bit_offset: int, bit_size: int, data: memoryview, offset: int) -> int:
    first = offset + bit_offset // 8
    last = offset + (bit_offset + bit_size + 7) // 8
    word = int.from_bytes(data[first:last], "little")
    return (word >> (bit_offset % 8)) & ((1 << bit_size) - 1)


def plain(value: Any) -> Any:
    """A decoded value as JSON-ready dicts/lists (enums: ``{"variant": ..., **fields}``)."""
    if isinstance(value, StructValue):
        return {k: plain(v) for k, v in value._fields.items()}
    if isinstance(value, EnumValue):
        out = {"variant": value.variant}
        if value.payload is not None:
            out.update(plain(value.payload))
        return out
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, RawValue):
        return value.data.hex()
    return value
