"""Debug info of the kernel ELF, read with pyelftools (no gdb): symbols with Rust paths,
DWARF type layouts (structs, arrays, Rust enums with tags or niches), a decoder from raw
bytes to Python values, an on-disk cache keyed by build-id, and the build-id check
against the running kernel.

Example::

    from gdb_tinyos.debuginfo import DebugInfo, decode, check_build_id

    info = DebugInfo.open("kernel/target/aarch64-unknown-none-softfloat/release/tinyos")
    check_build_id(info, target)
    lock = info.static("COW_MANAGER")
    offset, layout = lock.layout.member_path("data.value")
    manager = decode(layout, target.read_virtual(lock.address + offset, layout.size))
"""

from .buildid import check_build_id, parse_build_id_notes, read_build_id
from .cache import default_cache_dir
from .decode import DecodeError, EnumValue, RawValue, StructValue, decode, plain
from .demangle import demangle
from .info import DebugInfo, Static
from .layouts import (
    ArrayType, BaseType, Enumerator, EnumType, Member, OpaqueType, PointerType, RustEnumType,
    StructType, Type, TypedefType, Variant, member_path,
)
from .symbols import Symbol, SymbolTable, split_path

__all__ = [
    "ArrayType", "BaseType", "DebugInfo", "DecodeError", "EnumType", "EnumValue", "Enumerator",
    "Member", "OpaqueType", "PointerType", "RawValue", "RustEnumType", "Static", "StructType",
    "StructValue", "Symbol", "SymbolTable", "Type", "TypedefType", "Variant", "check_build_id",
    "decode", "default_cache_dir", "demangle", "member_path", "parse_build_id_notes", "plain",
    "read_build_id", "split_path",
]
