"""The rust_layouts fixture ELF (built once per session, both profiles) and helpers the
other test_debuginfo_* modules import: reading the ELF's initialised memory, the
compiler's own layout answers, and a FakeTarget holding the image."""

from __future__ import annotations

import functools
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from gdb_tinyos.debuginfo import DebugInfo
from gdb_tinyos.core.target import FakeTarget

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_CRATE = ROOT / "tests" / "fixtures" / "rust_layouts"
PROFILES = ("debug", "release")


@functools.cache
def build_fixture(profile: str) -> Path:
    """Build the fixture crate with the kernel's offline recipe; cargo keeps it in
    tests/fixtures/rust_layouts/target, so later sessions only check it is current."""
    args = [str(ROOT / "scripts" / "build-kernel"), "--crate", str(FIXTURE_CRATE), "--quiet"]
    if profile == "debug":
        args.append("--debug")
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"fixture build failed:\n{done.stderr[-3000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


class ElfImage:
    """The ELF's loaded segments by virtual address: what the static initialisers wrote."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            self.segments = [
                (seg["p_vaddr"], seg.data() + bytes(seg["p_memsz"] - seg["p_filesz"]))
                for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"
            ]

    def read(self, va: int, size: int) -> bytes:
        for start, data in self.segments:
            if start <= va and va + size <= start + len(data):
                return data[va - start : va - start + size]
        raise AssertionError(f"{va:#x}+{size} is not in a loaded segment")

    def target(self) -> FakeTarget:
        t = FakeTarget()
        for start, data in self.segments:
            t.write_physical(start, data)
        return t


@functools.cache
def nm_symbols(path: Path) -> dict[str, int]:
    """Symbol name -> address as binutils' nm sees them (independent of the code under test)."""
    out = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    return {parts[2]: int(parts[0], 16) for parts in (line.split() for line in out.splitlines()) if len(parts) == 3}


def nm_address(path: Path, mangled_fragment: str) -> int:
    """Address of the one nm symbol whose mangled name contains ``mangled_fragment``."""
    hits = [a for n, a in nm_symbols(path).items() if mangled_fragment in n]
    assert len(hits) == 1, f"{mangled_fragment}: {hits}"
    return hits[0]


def layout_facts(path: Path) -> dict[str, int]:
    """LAYOUT_NAMES/LAYOUT_FACTS read through nm addresses and raw segment bytes."""
    image = ElfImage(path)
    names_at = nm_address(path, "5facts12LAYOUT_NAMES")
    facts_at = nm_address(path, "5facts12LAYOUT_FACTS")
    sizes = _nm_sizes(path)
    names = image.read(names_at, sizes[names_at]).decode().splitlines()
    values = struct.unpack(f"<{len(names)}Q", image.read(facts_at, 8 * len(names)))
    return dict(zip(names, values))


def _nm_sizes(path: Path) -> dict[int, int]:
    out = subprocess.run(["nm", "-S", str(path)], capture_output=True, text=True, check=True).stdout
    return {int(p[0], 16): int(p[1], 16) for p in (line.split() for line in out.splitlines()) if len(p) == 4}


@pytest.fixture(scope="session", params=PROFILES)
def fixture_elf(request) -> Path:
    return build_fixture(request.param)


@pytest.fixture
def fixture_info(fixture_elf, tmp_path):
    with DebugInfo.open(fixture_elf, cache_dir=tmp_path / "cache") as info:
        yield info


def test_both_profiles_build_with_distinct_build_ids():
    ids = set()
    for profile in PROFILES:
        notes = subprocess.run(["readelf", "-n", str(build_fixture(profile))], capture_output=True, text=True, check=True)
        ids.add(notes.stdout.split("Build ID:")[1].split()[0])
    assert len(ids) == 2


def test_layout_facts_are_readable(fixture_elf):
    facts = layout_facts(fixture_elf)
    # Values stated in the fixture's Rust source, not computed by any layout code.
    assert facts["memory::cow::CowManager.cow_pages#len"] == 64
    assert facts["small::CowManager.cow_pages#len"] == 5
    assert facts["SimpleVec<u64>.data#len"] == 8
