"""The typed model of DWARF type layouts: what a decoder needs to read raw bytes.

Every type knows its name, size and alignment. Aggregates hold their members' types
directly (a tree); only pointers refer to their target by DIE offset, resolved on demand
through :meth:`gdb_tinyos.debuginfo.DebugInfo.pointee`, so self-referential types
(``struct Node { next: *const Node }``) never make the model cyclic and it is cached as plain data.

Example::

    cow = info.type("memory::cow::CowManager")
    offset, pages = cow.member_path("cow_pages")
    assert isinstance(pages, ArrayType) and pages.count == 64
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import LayoutError


@dataclass(frozen=True)
class Type:
    """Common to every layout: the DWARF name (``""`` when anonymous), size and alignment."""

    name: str
    size: int
    align: int

    def strip_typedefs(self) -> Type:
        return self

    def member_path(self, path: str) -> tuple[int, Type]:
        """Offset and type of a dotted path inside this type (see :func:`member_path`)."""
        return member_path(self, path)


@dataclass(frozen=True)
class BaseType(Type):
    """A scalar: ``encoding`` is one of unsigned, signed, boolean, float, char, unit."""

    encoding: str


@dataclass(frozen=True)
class PointerType(Type):
    """A pointer or reference; ``target_offset`` is the pointee's DIE (None for ``void``)."""

    target_name: str
    target_offset: int | None


@dataclass(frozen=True)
class Member:
    name: str
    offset: int
    type: Type
    bit_size: int | None = None
    bit_offset: int | None = None


@dataclass(frozen=True)
class StructType(Type):
    """A struct, tuple, union (``is_union``) or a Rust enum variant's payload."""

    members: tuple[Member, ...] = ()
    is_union: bool = False

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        names = ", ".join(m.name for m in self.members) or "none"
        raise LayoutError(f"{self.name or 'anonymous struct'} has no member {name!r} (members: {names})")


@dataclass(frozen=True)
class ArrayType(Type):
    """``[element; dims[0]]``, or a multi-dimensional array with one entry per subrange.

    A Rust ``[[u16; 3]; 2]`` is an array of arrays (dims ``(2,)`` of an array with dims
    ``(3,)``); C-style DWARF may give several subranges on one array (dims ``(2, 3)``).
    """

    element: Type = field(default_factory=lambda: BaseType("()", 0, 1, "unit"))
    dims: tuple[int, ...] = (0,)

    @property
    def count(self) -> int:
        """Number of elements of the outermost dimension."""
        return self.dims[0]

    def row(self) -> Type:
        """Type of one element of the outermost dimension (a sub-array when dims > 1)."""
        if len(self.dims) == 1:
            return self.element
        inner = self.dims[1:]
        n = 1
        for d in inner:
            n *= d
        return ArrayType(f"[{self.element.name}; {inner}]", n * self.element.size, self.align, self.element, inner)


@dataclass(frozen=True)
class Enumerator:
    name: str
    value: int


@dataclass(frozen=True)
class EnumType(Type):
    """A C-like (fieldless) enum: an integer whose legal values are the enumerators."""

    signed: bool = False
    enumerators: tuple[Enumerator, ...] = ()

    def name_of(self, value: int) -> str | None:
        for e in self.enumerators:
            if e.value == value:
                return e.name
        return None


@dataclass(frozen=True)
class Variant:
    """One arm of a Rust enum. ``discr`` lists inclusive ``(low, high)`` ranges of the
    discriminant field's value; ``None`` marks the default arm (the dataful variant of a
    niche-encoded enum, which DWARF gives no value)."""

    name: str
    discr: tuple[tuple[int, int], ...] | None
    payload: StructType
    offset: int = 0  # of the payload in the enum (rustc: always 0)

    def matches(self, value: int) -> bool:
        return self.discr is not None and any(lo <= value <= hi for lo, hi in self.discr)


@dataclass(frozen=True)
class RustEnumType(Type):
    """A Rust enum with data (``DW_TAG_variant_part``): a tag or a niche selects the variant.

    ``discr_offset``/``discr_size``/``discr_signed`` describe the field DWARF names as the
    discriminant (the explicit tag, or the niche inside the dataful variant's payload);
    an enum with a single variant has none.
    """

    discr_offset: int | None = None
    discr_size: int = 0
    discr_signed: bool = False
    variants: tuple[Variant, ...] = ()

    def discriminant(self, data: bytes | memoryview, offset: int = 0) -> int | None:
        """The raw discriminant field's value of the enum at ``offset`` in ``data``
        (None when the enum has no discriminant field)."""
        if self.discr_offset is None:
            return None
        start = offset + self.discr_offset
        raw = data[start : start + self.discr_size]
        if len(raw) != self.discr_size:
            raise LayoutError(f"{self.name}: discriminant at offset {start} lies outside {len(data)} bytes")
        return int.from_bytes(raw, "little", signed=self.discr_signed)

    def variant_for(self, data: bytes) -> Variant | None:
        """The active variant for ``data`` (None when no variant claims the value)."""
        return self.select(self.discriminant(data))

    def select(self, value: int | None) -> Variant | None:
        """The variant for a discriminant value: an explicit match first, else the
        default arm; an enum without a discriminant field has one variant."""
        if value is None:
            return self.variants[0] if len(self.variants) == 1 else None
        default = None
        for v in self.variants:
            if v.matches(value):
                return v
            if v.discr is None:
                default = v
        return default

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise LayoutError(f"{self.name} has no variant {name!r} (variants: {', '.join(v.name for v in self.variants)})")


@dataclass(frozen=True)
class TypedefType(Type):
    """A named alias (C typedefs; rustc emits none for ``type`` aliases)."""

    target: Type = field(default_factory=lambda: BaseType("()", 0, 1, "unit"))

    def strip_typedefs(self) -> Type:
        return self.target.strip_typedefs()


@dataclass(frozen=True)
class OpaqueType(Type):
    """A type the decoder does not look inside (function types, unspecified types)."""

    tag: str = ""


def member_path(root: Type, path: str) -> tuple[int, Type]:
    """Walk ``"a.b.c"`` from ``root``: struct members by name, enum variants by variant name
    (``"value.Some.__0"``), and array elements as ``[i]``. Returns (offset, type)."""
    offset, current = 0, root.strip_typedefs()
    for step in _steps(path):
        if isinstance(step, int):
            if not isinstance(current, ArrayType):
                raise LayoutError(f"{path!r}: [{step}] indexes {current.name}, which is not an array")
            if not 0 <= step < current.count:
                raise LayoutError(f"{path!r}: index {step} outside {current.name} (length {current.count})")
            row = current.row()
            offset += step * row.size
            current = row
        elif isinstance(current, RustEnumType):
            variant = current.variant(step)
            offset += variant.offset
            current = variant.payload
        elif isinstance(current, StructType):
            m = current.member(step)
            offset += m.offset
            current = m.type
        else:
            raise LayoutError(f"{path!r}: {current.name or type(current).__name__} has no members (at {step!r})")
        current = current.strip_typedefs()
    return offset, current


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            steps.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            if not index.isdigit():
                raise LayoutError(f"{path!r}: array index {index!r} is not a number")
            steps.append(int(index))
            rest = rest.removeprefix("[")
    return steps
