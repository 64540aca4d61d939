"""cow-graph on `run forkwrite` at the fork: the graph's nodes and edges are exactly
`cow-status --json`'s pages and sharers; the SVG is Graphviz's rendering of them; a missing
Graphviz costs one line."""

from __future__ import annotations

import re

from gdb_tinyos.testing import DebugEvent


def test_graph_equals_cow_status(tinyos_debug_factory, tmp_path):
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    s.run_to_event(DebugEvent.FORK, action=lambda: s.console.send_line("run forkwrite"))
    parent, child = s.gdb.read_register("x1"), s.gdb.read_register("x2")
    status = s.gdb.cli_json("cow-status --limit 0 --json")
    graph = s.gdb.cli_json("cow-graph --json")["graph"]
    assert status["pages"], "forkwrite shares pages at the fork"

    assert {(f["pa"], f["refs"], f["cow"]) for f in graph["frames"]} == {
        (p["pa"], p["refs"], p["cow"]) for p in status["pages"]}
    ids = {f["id"]: f["pa"] for f in graph["frames"]} | {p["id"]: p["pid"] for p in graph["processes"]}
    assert sorted((ids[e["source"]], ids[e["target"]], e["va"], e["perms"]) for e in graph["edges"]) == sorted(
        (sh["pid"], p["pa"], sh["va"], sh["pte"]) for p in status["pages"] for sh in p["sharers"])
    assert {p["pid"] for p in graph["processes"]} == {parent, child}
    assert all(not f["violations"] for f in graph["frames"]) and all(not e["flags"] for e in graph["edges"])

    svg = tmp_path / "cow.svg"
    text = s.gdb.cli(f"cow-graph --svg {svg}")
    assert f"{len(graph['frames'])} frames, {len(graph['edges'])} mappings" in text
    rendered = svg.read_text()
    assert rendered.lstrip().startswith("<?xml") and "<svg" in rendered
    for p in status["pages"]:
        assert p["pa"] in rendered
    assert len(re.findall(r'<g id="edge\d+" class="edge">', rendered)) == len(graph["edges"])

    dot = tmp_path / "cow.dot"
    s.gdb.cli(f"cow-graph --pid {child} --dot {dot}")
    assert dot.read_text().count(" -> ") == sum(1 for e in graph["edges"] if ids[e["source"]] == child)

    first = min(int(p["pa"], 16) for p in status["pages"])
    only = s.gdb.cli_json(f"cow-graph --pa {first:#x}-{first + 0x1000:#x} --json")["graph"]
    assert [f["pa"] for f in only["frames"]] == [hex(first)]


def test_errors_are_one_line(tinyos_debug_factory, tmp_path):
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    s.run_to_event(DebugEvent.FORK, action=lambda: s.console.send_line("run forkwrite"))
    assert "--svg FILE or --dot FILE" in s.gdb.expect_one_line_error("cow-graph")
    assert "not a range" in s.gdb.expect_one_line_error("cow-graph --pa 0x5000-0x1000 --dot x")
    assert "cannot write" in s.gdb.expect_one_line_error("cow-graph --dot /nonexistent/dir/g.dot")
    s.gdb.cli('python import os; os.environ["TINYOS_SAVED_PATH"] = os.environ["PATH"]; os.environ["PATH"] = "/nonexistent"')
    try:
        assert "Graphviz `dot` is not installed" in s.gdb.expect_one_line_error(f"cow-graph --svg {tmp_path}/g.svg")
    finally:
        s.gdb.cli('python import os; os.environ["PATH"] = os.environ["TINYOS_SAVED_PATH"]')
