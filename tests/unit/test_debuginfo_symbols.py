"""Rust demangling (legacy and v0) and symbol lookup by name, path and unique suffix.

Expected demanglings are written from the mangling rules (RFC 2603 for v0; the legacy
scheme's length-prefixed components and 17h<hash> suffix) or taken from rustc-demangle's
published test cases; fixture addresses come from binutils' nm."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdb_tinyos.debuginfo import Symbol, SymbolTable, demangle, split_path
from gdb_tinyos.debuginfo.symbols import is_suffix
from gdb_tinyos.core.errors import SymbolError
from test_debuginfo_fixture import fixture_elf, fixture_info, nm_address, nm_symbols  # noqa: F401


@pytest.mark.parametrize("mangled, path", [
    ("_ZN6tinyos6memory3cow11COW_MANAGER17h0123456789abcdefE", "tinyos::memory::cow::COW_MANAGER"),
    ("_ZN4core3fmt9Formatter3pad17h5a3f2e1b0c9d8e7fE", "core::fmt::Formatter::pad"),
    ("_ZN68_$LT$tinyos..sync..SpinLock$LT$T$GT$$u20$as$u20$core..fmt..Debug$GT$3fmt17h0000000000000000E",
     "<tinyos::sync::SpinLock<T> as core::fmt::Debug>::fmt"),
    ("_ZN3foo3bar17h05af221e174051e9E.llvm.1234", "foo::bar"),
    ("_ZN3foo3barE", "foo::bar"),  # no hash component: nothing dropped
])
def test_legacy(mangled, path):
    assert demangle(mangled) == path


@pytest.mark.parametrize("mangled, path", [
    # crate root + value namespace: C <disambiguator> <ident>, N v <path> <ident>
    ("_RNvC6_123foo3bar", "123foo::bar"),
    ("_RNvNtNtCs5Sfugq89YtP_12rust_layouts6memory3cow11COW_MANAGER", "rust_layouts::memory::cow::COW_MANAGER"),
    # closures: N C <path> s<dis> 0 -> {closure#dis}
    ("_RNCNCNgCs6DXkGYLi8lr_2cc5spawn00B5_", "cc::spawn::{closure#0}::{closure#0}"),
    # inherent impls with const generics (rustc-demangle's const_generic cases)
    ("_RMCs4fqI2P2rA04_13const_genericINtB0_8UnsignedKhb_E", "<const_generic::Unsigned<11>>"),
    ("_RMCs4fqI2P2rA04_13const_genericINtB0_6SignedKanb_E", "<const_generic::Signed<-11>>"),
    ("_RMCs4fqI2P2rA04_13const_genericINtB0_4BoolKb0_E", "<const_generic::Bool<false>>"),
    ("_RMCs4fqI2P2rA04_13const_genericINtB0_4CharKc76_E", "<const_generic::Char<'v'>>"),
    ("_RNvNvMCs4fqI2P2rA04_13const_genericINtB4_3FooKpE3foo3FOO", "<const_generic::Foo<_>>::foo::FOO"),
    # generic function with a dyn type argument, a backref and an instantiating crate
    ("_RINbNbCskIICzLVDPPb_5alloc5alloc8box_freeDINbNiB4_5boxed5FnBoxuEp6OutputuEL_ECs1iopQbuBiw2_3std",
     "alloc::alloc::box_free::<dyn alloc::boxed::FnBox<(), Output = ()>>"),
    # trait impl: X <impl-path> <type> <trait path>
    ("_RNvXCs1234_6tinyosNtB2_4PageNtNtCs5678_4core3fmt5Debug3fmt", "<tinyos::Page as core::fmt::Debug>::fmt"),
])
def test_v0(mangled, path):
    assert demangle(mangled) == path


@pytest.mark.parametrize("name", ["main", "_start", "__build_id_start", "_R", "_RNvC", "_RB_", "_RNvC3ab", "_ZN5abc", "_ZN3foo"])
def test_not_rust_or_malformed_gives_none(name):
    assert demangle(name) is None


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=60))
def test_v0_fuzz_terminates_without_exceptions(tail):
    result = demangle("_R" + tail)
    assert result is None or isinstance(result, str)


def test_split_path_keeps_generic_arguments_whole():
    assert split_path("core::option::Option<tiny::cow::CowPage>") == ["core", "option", "Option<tiny::cow::CowPage>"]
    assert split_path("<a::B as c::D>::f") == ["<a::B as c::D>", "f"]


def _table() -> SymbolTable:
    return SymbolTable([
        Symbol("_RNvNtNtC6tinyos6memory3cow11COW_MANAGER", "tinyos::memory::cow::COW_MANAGER", 0x1000, 64, "object"),
        Symbol("_RNvNtNtC6tinyos7process5table11COW_MANAGER", "tinyos::process::table::COW_MANAGER", 0x2000, 8, "object"),
        Symbol("FRAMES", "tinyos::memory::frame::FRAMES", 0x3000, 8, "object", type_offset=0x55),
        Symbol("FRAMES", "FRAMES", 0x3000, 8, "object"),
        Symbol("alias_a", "alias_a", 0x4000, 0, "notype"),
    ], "kernel.elf")


@pytest.mark.parametrize("query, address", [
    ("tinyos::memory::cow::COW_MANAGER", 0x1000),
    ("cow::COW_MANAGER", 0x1000),
    ("memory::cow::COW_MANAGER", 0x1000),
    ("::table::COW_MANAGER", 0x2000),
    ("_RNvNtNtC6tinyos6memory3cow11COW_MANAGER", 0x1000),
    ("FRAMES", 0x3000),
    ("frame::FRAMES", 0x3000),
])
def test_lookup(query, address):
    assert _table().lookup(query).address == address


def test_same_address_counts_once_and_prefers_the_typed_entry():
    assert _table().lookup("FRAMES").type_offset == 0x55


def test_ambiguous_suffix_lists_candidates():
    with pytest.raises(SymbolError) as err:
        _table().lookup("COW_MANAGER")
    assert "tinyos::memory::cow::COW_MANAGER (0x1000)" in str(err.value)
    assert "tinyos::process::table::COW_MANAGER (0x2000)" in str(err.value)


def test_missing_names_what_was_searched():
    with pytest.raises(SymbolError, match=r"no symbol named or ending in 'cow::NOPE' in kernel.elf \(searched 5"):
        _table().lookup("cow::NOPE")


def test_partial_segments_do_not_match():
    with pytest.raises(SymbolError):
        _table().lookup("MANAGER")  # suffixes match whole path segments only


def test_fixture_symbols_agree_with_nm(fixture_elf, fixture_info):
    assert fixture_info.symbol("cow::COW_MANAGER").address == nm_address(fixture_elf, "6memory3cow11COW_MANAGER")
    assert fixture_info.symbol("small::COW_MANAGER").address == nm_address(fixture_elf, "5small11COW_MANAGER")
    assert fixture_info.symbol("__build_id_start").address == nm_symbols(fixture_elf)["__build_id_start"]
    with pytest.raises(SymbolError, match="ambiguous"):
        fixture_info.symbol("COW_MANAGER")


def test_no_mangle_static_has_elf_name_and_dwarf_path(fixture_elf, fixture_info):
    marker = nm_symbols(fixture_elf)["TINYOS_FIXTURE_MARKER"]
    by_name = fixture_info.static("TINYOS_FIXTURE_MARKER")
    by_path = fixture_info.static("rust_layouts::variants::TINYOS_FIXTURE_MARKER")
    assert by_name.address == by_path.address == marker
    assert by_name.layout.name == "u64"


def test_linker_symbol_at_a_static_address_does_not_steal_its_path(fixture_elf, fixture_info):
    # __build_id_end marks where .data starts; the static there keeps its own name.
    end = fixture_info.symbol("__build_id_end")
    assert end.path == "__build_id_end" and end.type_offset is None


@pytest.mark.parametrize("query, path, expected", [
    ("Option<CowPage>", "core::option::Option<tinyos::memory::cow::CowPage>", True),
    ("option::Option<cow::CowPage>", "core::option::Option<tinyos::memory::cow::CowPage>", True),
    ("Option<CowPage>", "core::option::Option<&tinyos::memory::cow::CowPage>", False),
    ("Option<&CowPage>", "core::option::Option<&tinyos::memory::cow::CowPage>", True),
    ("Option<CowPage>", "core::option::Option<tinyos::memory::cow::OtherPage>", False),
    ("SpinLock<CowManager>", "tinyos::sync::SpinLock<tinyos::memory::cow::CowManager>", True),
    ("Result<u16, bool>", "core::result::Result<u16, bool>", True),
    ("Result<u16>", "core::result::Result<u16, bool>", False),
    ("Outer<Option<CowPage>>", "m::Outer<core::option::Option<t::CowPage>>", True),
])
def test_generic_arguments_match_by_path_suffix(query, path, expected):
    assert is_suffix(split_path(query), split_path(path)) is expected
