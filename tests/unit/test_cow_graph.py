"""cow-graph's model and DOT text, on a status written by hand; Graphviz parses the DOT."""

from __future__ import annotations

import json
import shutil
import subprocess

from gdb_tinyos.core.address import Address
from gdb_tinyos.tinyos.check import CheckReport, Violation
from gdb_tinyos.tinyos.graph import build_graph, dot_string, to_dot
from gdb_tinyos.tinyos.reports import CowStatus, PageView, SharerView

A = Address
RO = "EL1:R-- EL0:R--"


def status() -> CowStatus:
    shared = PageView(6, A(0x4000_6000), 2, True, "UserData", (
        SharerView(A(0x80_0000), 1, RO, A(0x4000_6000)), SharerView(A(0x80_0000), 2, RO, A(0x4000_6000))))
    private = PageView(9, A(0x4000_9000), 1, False, "UserData", (
        SharerView(A(0x1000_0000), 2, "EL1:RW- EL0:RW-", A(0x4000_9000), ("COW page mapped writable",)),))
    lonely = PageView(12, A(0x4000_C000), 1, True, "UserData", (SharerView(A(0x7FFF_FFFE_E000), 3, RO, A(0x4000_C000)),))
    return CowStatus("COW_MANAGER", A(0x1000), True, False, 64, 3, None, (shared, private, lonely))


def report() -> CheckReport:
    return CheckReport(3, 4, 3, (Violation("refcount", A(0x4000_9000), "ref_count 1 != 2 PTEs"),))


NAMES = {1: "forkwrite", 2: "forkwrite", 3: 'a "quoted" \\ name\x1b[2J'}


def test_nodes_and_edges_are_the_pages_and_sharers():
    g = build_graph(status(), report(), NAMES)
    assert [(p.pid, p.name) for p in g.processes] == [(1, "forkwrite"), (2, "forkwrite"), (3, NAMES[3])]
    assert [(f.pa, f.refs, f.cow, f.violations) for f in g.frames] == [
        (0x4000_6000, 2, True, ()), (0x4000_9000, 1, False, ("refcount: ref_count 1 != 2 PTEs",)),
        (0x4000_C000, 1, True, ())]
    assert [(e.source, e.target, e.va, e.perms) for e in g.edges] == [
        ("p1", "f40006000", 0x80_0000, RO), ("p2", "f40006000", 0x80_0000, RO),
        ("p2", "f40009000", 0x1000_0000, "EL1:RW- EL0:RW-"), ("p3", "f4000c000", 0x7FFF_FFFE_E000, RO)]


def test_filters_by_pid_and_physical_range():
    g = build_graph(status(), None, NAMES, pids={1})
    assert [f.pa for f in g.frames] == [0x4000_6000] and [e.source for e in g.edges] == ["p1"]
    assert [p.pid for p in g.processes] == [1]
    g = build_graph(status(), None, NAMES, pa_range=(0x4000_7000, 0x4000_D000))
    assert [f.pa for f in g.frames] == [0x4000_9000, 0x4000_C000]


def test_dot_strings_escape_quotes_backslashes_and_control_characters():
    assert dot_string('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert dot_string("two\nlines") == '"two\\nlines"'
    assert dot_string("esc\x1b[2J") == '"esc\\\\x1b[2J"'  # shown as text, never passed through


def test_violations_and_flagged_edges_are_red_and_graphviz_parses_it(tmp_path):
    text = to_dot(build_graph(status(), report(), NAMES))
    frame_line = next(line for line in text.splitlines() if line.strip().startswith("f40009000 ["))
    assert 'color="#d62728"' in frame_line and "refcount" in frame_line and "private" in frame_line
    edge_line = next(line for line in text.splitlines() if "p2 -> f40009000" in line)
    assert 'color="#d62728"' in edge_line and "COW page mapped writable" in edge_line
    assert "\x1b" not in text
    dot = shutil.which("dot")
    assert dot, "Graphviz `dot` is missing: ./scripts/test installs graphviz"
    out = subprocess.run([dot, "-Tjson"], input=text.encode(), capture_output=True, check=True).stdout
    labels = {o["name"]: o["label"] for o in json.loads(out)["objects"]}
    # Graphviz read the string back whole (its escString keeps \\ and \n until rendering)
    assert labels["p3"] == 'pid 3\\na "quoted" \\\\ name\\\\x1b[2J'
    svg = tmp_path / "g.svg"
    subprocess.run([dot, "-Tsvg", "-o", str(svg)], input=text.encode(), check=True)
    rendered = svg.read_text()
    assert "0x40006000" in rendered and "a &quot;quoted&quot; \\ name\\x1b[2J</text>" in rendered
