"""The sharing picture: processes -> the frames they map, as a graph model and as DOT text.

Built from the ``cow-status`` model (:class:`~gdb_tinyos.tinyos.reports.CowStatus`, every
tracked frame with each recorded sharer's live PTE) and the ``cow-check`` report: one node
per process and per tracked frame, one edge per sharer labelled with its VA and the PTE's
permissions now. COW frames and tracked-but-private frames are drawn differently; frames
with a violation, and flagged sharers, in red. The DOT text is written here (every label
escaped), Graphviz only renders it.

Example::

    graph = build_graph(status, report, names={1: "forkwrite"})
    open("cow.dot", "w").write(to_dot(graph))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.address import Address
from ..core.render import printable
from .check import CheckReport
from .reports import CowStatus


@dataclass(frozen=True)
class ProcessNode:
    id: str
    pid: int
    name: str


@dataclass(frozen=True)
class FrameNode:
    id: str
    pa: Address
    refs: int
    cow: bool
    violations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edge:
    source: str  # process node id
    target: str  # frame node id
    va: Address
    perms: str
    flags: tuple[str, ...] = ()


@dataclass
class SharingGraph:
    processes: list[ProcessNode] = field(default_factory=list)
    frames: list[FrameNode] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def build_graph(status: CowStatus, report: CheckReport | None = None, names: dict[int, str] | None = None,
                pids: set[int] | None = None, pa_range: tuple[int, int] | None = None) -> SharingGraph:
    """The graph of ``status``'s pages; ``pids``: only frames one of them shares, and only their
    edges; ``pa_range``: only frames in [start, end)."""
    names = names or {}
    problems: dict[int, list[str]] = {}
    for v in (report.violations if report is not None else ()):
        if v.pa is not None:
            problems.setdefault(int(v.pa), []).append(f"{v.kind}: {v.message}")
    graph = SharingGraph()
    seen: dict[int, ProcessNode] = {}
    for page in status.pages:
        if pa_range is not None and not pa_range[0] <= page.pa < pa_range[1]:
            continue
        sharers = [s for s in page.sharers if pids is None or s.pid in pids]
        if pids is not None and not sharers:
            continue
        frame = FrameNode(f"f{page.pa:x}", Address(page.pa), page.refs, page.cow, tuple(problems.get(int(page.pa), ())))
        graph.frames.append(frame)
        for s in sharers:
            if s.pid not in seen:
                seen[s.pid] = ProcessNode(f"p{s.pid}", s.pid, names.get(s.pid, ""))
            graph.edges.append(Edge(seen[s.pid].id, frame.id, Address(s.va), s.pte, s.flags))
    graph.processes = sorted(seen.values(), key=lambda p: p.pid)
    return graph


def dot_string(text: str) -> str:
    """``text`` as a DOT double-quoted string: quotes and backslashes escaped, line breaks
    as DOT's ``\\n``, other control characters shown, never passed through."""
    lines = (printable(line).replace("\\", "\\\\").replace('"', '\\"') for line in text.split("\n"))
    return '"' + "\\n".join(lines) + '"'


RED = "#d62728"


def to_dot(graph: SharingGraph) -> str:
    out = ["digraph cow {", "  rankdir=LR;", '  node [fontname="monospace"];', '  edge [fontname="monospace"];']
    for p in graph.processes:
        label = f"pid {p.pid}" + (f"\n{p.name}" if p.name else "")
        out.append(f"  {p.id} [shape=box, style=rounded, label={dot_string(label)}];")
    for f in graph.frames:
        label = f"{f.pa}\nrefs {f.refs}\n{'COW' if f.cow else 'private'}" + "".join(f"\n{v}" for v in f.violations)
        style = "filled" if f.cow else "dashed"
        color = RED if f.violations else ("#1f77b4" if f.cow else "#7f7f7f")
        fill = ', fillcolor="#fde0e0"' if f.violations else (', fillcolor="#dbe9f6"' if f.cow else "")
        out.append(f"  {f.id} [shape=ellipse, style={style}, color={dot_string(color)}{fill}, label={dot_string(label)}];")
    for e in graph.edges:
        label = f"{e.va}\n{e.perms}" + "".join(f"\n{flag}" for flag in e.flags)
        color = f", color={dot_string(RED)}, fontcolor={dot_string(RED)}" if e.flags else ""
        out.append(f"  {e.source} -> {e.target} [label={dot_string(label)}{color}];")
    out.append("}")
    return "\n".join(out) + "\n"
