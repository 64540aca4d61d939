"""Capabilities discovered from a kernel ELF, and the bookkeeping conventions a kernel is
held to. Expected symbols are read from the ELF with `nm` (binutils), independently of the
plugin's symbol table."""

from __future__ import annotations

import subprocess

import pytest

from gdb_tinyos.core.address import Address
from gdb_tinyos.core.errors import MissingCapability
from gdb_tinyos.debuginfo import DebugInfo
from gdb_tinyos.tinyos.capabilities import PIECES, discover
from gdb_tinyos.tinyos.conventions import PIDS_SET, REFS_OWNER, STATISTICS, Conventions
from gdb_tinyos.tinyos.cow import CowPage, CowStatistics, pair_sharers


def nm(elf) -> dict[str, int]:
    out = subprocess.run(["nm", "-C", str(elf)], capture_output=True, text=True, check=True).stdout
    return {line.split(" ", 2)[2]: int(line.split()[0], 16) for line in out.splitlines() if line.count(" ") >= 2}


def test_the_shipped_kernel_has_every_piece_but_what_it_does_not_export(tinyos_kernel, tmp_path):
    symbols = nm(tinyos_kernel)
    with DebugInfo.open(tinyos_kernel, cache_dir=tmp_path) as info:
        caps = discover(info)
    for piece in PIECES:
        expected = [addr for name, addr in symbols.items() if name.split("::")[-1] == piece.symbol]
        cap = caps.get(piece.name)
        if expected:
            assert cap.found and cap.address == expected[0], piece.name
            assert cap.symbol.endswith(piece.symbol)
        else:
            assert not cap.found and piece.symbol in cap.reason
            assert caps.missing_line(piece.name).startswith(f"{piece.adds}: no {piece.what} in this kernel")
    assert caps.build_id is not None


def test_an_override_names_the_symbol_and_a_wrong_one_says_so(tinyos_kernel, tmp_path):
    with DebugInfo.open(tinyos_kernel, cache_dir=tmp_path) as info:
        caps = discover(info, {"cow-manager": "memory::cow::COW_MANAGER", "process-table": "NO_SUCH_TABLE"})
    assert caps.get("cow-manager").symbol.endswith("memory::cow::COW_MANAGER")
    assert not caps.has("process-table") and "set tinyos process-table NO_SUCH_TABLE" in caps.get("process-table").reason
    with pytest.raises(MissingCapability, match="pt --pid: no process table in this kernel"):
        caps.require("process-table", "pt --pid")


# -- conventions -------------------------------------------------------------------------

def page(vas, pids, refs, parallel=None):
    return CowPage(0, Address(0x4001_0000), refs, True, "UserData", pair_sharers(vas, pids, parallel),
                   tuple(Address(v) for v in vas), tuple(pids))


def stats(saved=0, metadata=0):
    return CowStatistics(1, 0, 0, saved, metadata, 1)


def test_our_conventions_are_the_default():
    conv = Conventions.detect(pages=[page([0x1000, 0x1000], [1, 2], 2)], statistics=stats(4096, 5000))
    assert (conv.refs, conv.pids, conv.maintained) == ("mappings", "parallel", frozenset(STATISTICS))
    assert conv.expected_refs(2) == 2


def test_upstream_conventions_are_seen_in_the_state():
    # One pid at two VAs: process_ids cannot be parallel; every ref_count is mappings + 1;
    # memory_saved and metadata stay 0 while the pages share frames.
    pages = [page([0x1000, 0x2000], [1], 3), page([0x3000, 0x3000, 0x3000], [1, 2, 3], 4)]
    conv = Conventions.detect(pages=pages, statistics=stats())
    assert (conv.refs, conv.pids) == (REFS_OWNER, PIDS_SET)
    assert not conv.maintains("memory_saved_bytes") and not conv.maintains("metadata_memory_bytes")
    assert conv.expected_refs(2) == 3 and conv.mappings(4) == 3
    assert all("state" in conv.sources[k] for k in ("refs", "pids", "maintained"))


def test_an_owner_counting_kernel_that_shares_nothing_saves_nothing():
    # refs 2 with one mapping each: the owner plus one mapping, no frame saved (by hand:
    # Σ(mappings − 1) = 0). A memory_saved_bytes of 0 is then right, not "unmaintained".
    conv = Conventions.detect(pages=[page([0x1000], [1], 2), page([0x2000], [2], 2)], statistics=stats(0, 5000))
    assert conv.refs == REFS_OWNER and conv.maintains("memory_saved_bytes")


def test_the_contract_outranks_the_state_and_a_parameter_outranks_both():
    pages = [page([0x1000], [1], 2)]  # would look like "owner" from the state alone
    contract = {"cow_refs_count_owner": 0, "cow_pids_parallel": 1, "cow_stats_maintained": 0b111111}
    conv = Conventions.detect(contract=contract, pages=pages, statistics=stats())
    assert (conv.refs, conv.pids, conv.sources["refs"]) == ("mappings", "parallel", "contract")
    assert conv.maintained == frozenset(STATISTICS)
    conv = Conventions.detect(contract=contract, pages=pages, overrides={"refs": "owner", "maintained": "cow_pages_count"})
    assert (conv.refs, conv.sources["refs"], conv.maintained) == ("owner", "parameter", frozenset({"cow_pages_count"}))


@pytest.mark.parametrize(("vas", "pids", "parallel", "expected"), [
    ([0x1000, 0x2000], [1, 2], None, [(0x1000, 1), (0x2000, 2)]),      # parallel lists
    ([0x1000, 0x2000], [1], None, [(0x1000, 1), (0x2000, 1)]),         # one pid owns every VA
    ([0x5000, 0x5000], [1, 2], False, [(0x5000, 1), (0x5000, 2)]),     # a set, the same VA in each pid
    ([0x1000, 0x2000, 0x3000], [1, 2], None, [(0x1000, None), (0x2000, None), (0x3000, None)]),  # cannot be told
])
def test_sharers_pair_only_when_the_lists_say_how(vas, pids, parallel, expected):
    assert [(s.va, s.pid) for s in pair_sharers(vas, pids, parallel)] == expected
