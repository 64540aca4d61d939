"""GNU build-ids: the ELF's own, and the running kernel's (compared with it).

The kernel keeps its ``.note.gnu.build-id`` in a loaded section between the linker symbols
``__build_id_start`` and ``__build_id_end``, so the bytes can be read from target memory
and parsed exactly like the note in the file.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from elftools.elf.elffile import ELFFile

from ..core.errors import BuildIdMismatch, SymbolError
from ..core.target import Target

if TYPE_CHECKING:
    from .info import DebugInfo

NT_GNU_BUILD_ID = 3
# A note region larger than this is not a build-id note: don't read megabytes on a bad symbol.
_MAX_NOTE_BYTES = 4096


def read_build_id(elf: ELFFile) -> bytes | None:
    """The NT_GNU_BUILD_ID descriptor of ``elf``, or None when it has none."""
    for section in elf.iter_sections():
        if section["sh_type"] != "SHT_NOTE":
            continue
        for note in section.iter_notes():
            if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":
                return bytes.fromhex(note["n_desc"])
    return None


def parse_build_id_notes(data: bytes) -> bytes | None:
    """The build-id in a run of ELF notes (``namesz, descsz, type, name, desc``, 4-aligned),
    or None if ``data`` holds no GNU build-id note."""
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        name_end = pos + 12 + namesz
        desc_start = name_end + (-namesz % 4)
        desc_end = desc_start + descsz
        if desc_end > len(data):
            return None
        if ntype == NT_GNU_BUILD_ID and data[pos + 12 : name_end] == b"GNU\0":
            return data[desc_start:desc_end]
        pos = desc_end + (-descsz % 4)
    return None


def check_build_id(info: DebugInfo, target: Target) -> bytes:
    """Compare the ELF's build-id with the running kernel's; return it when they agree.

    Raises BuildIdMismatch (with both ids) when they differ or the kernel's region holds no
    build-id note, SymbolError when the ELF has no ``__build_id_start``/``__build_id_end``,
    DebugInfoError when the ELF itself has no build-id, MemoryReadError when the region
    cannot be read."""
    expected = info.require_build_id()
    start = info.symbol("__build_id_start").address
    end = info.symbol("__build_id_end").address
    if not 0 < end - start <= _MAX_NOTE_BYTES:
        raise SymbolError(
            f"__build_id_start ({start:#x}) and __build_id_end ({end:#x}) in {info.path} "
            "do not delimit a build-id note")
    running = parse_build_id_notes(target.read_virtual(start, end - start))
    if running != expected:
        shown = running.hex() if running is not None else f"no build-id note at {start:#x}"
        raise BuildIdMismatch(
            f"the running kernel ({shown}) is not the ELF {info.path} (build-id {expected.hex()}): "
            "load the ELF the kernel was built from")
    return expected
