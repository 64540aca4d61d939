"""The styling vocabulary (core/style.py): which spans of a text face are addresses,
permissions, COW marks, violations and OKs -- checked on lines the commands print."""

from __future__ import annotations

from gdb_tinyos.core import style


def tags(text: str) -> str:
    return style.highlight(text, lambda kind, span: f"<{kind}:{span}>")


def test_va2pa_line():
    assert tags("va 0x800000 -> pa 0x40006000 EL1:R-- EL0:R-- PXN UXN") == (
        "va <address:0x800000> -> pa <address:0x40006000> <permission:EL1:R--> <permission:EL0:R--> PXN UXN")


def test_verdicts_win_over_other_kinds():
    assert tags("cow-check: 3 violations") == "cow-check: <violation:3 violations>"
    assert tags("cow-check: OK (3 pages, 10 user PTEs checked)") == "cow-check: <ok:OK> (3 pages, 10 user PTEs checked)"
    assert tags("build-id: MISMATCH: the running kernel") == "build-id: <violation:MISMATCH>: the running kernel"
    assert tags("cow_pages_count  0  0  occupied slots  ok") == "cow_pages_count  0  0  occupied slots  <ok:ok>"


def test_cow_marks_but_not_command_names():
    assert tags("0x30000000 refs=2 cow=yes") == "<address:0x30000000> refs=2 <cow:cow=yes>"
    assert tags("COW Pages: 3") == "<cow:COW> Pages: 3"
    assert tags("see cow-status and cow-check") == "see cow-status and cow-check"
    assert tags("0x0 violations") == "<address:0x0> violations"  # no count: not a verdict


def test_a_rust_path_through_cow_is_not_a_cow_mark():
    assert tags("tinyos::memory::cow::COW_MANAGER at 0x4009f518") == "tinyos::memory::cow::COW_MANAGER at <address:0x4009f518>"
