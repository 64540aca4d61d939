"""``cow-graph``: who shares which frame, as a Graphviz picture (:mod:`gdb_tinyos.tinyos.graph`)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import TinyOSError
from ...core.render import counted
from ...tinyos.graph import SharingGraph, build_graph, to_dot
from ...tinyos.reports import build_status
from ..args import UsageError
from ..base import TinyOSCommand
from ..registry import command
from ..session import Session
from .cow_check import run_check


class GraphvizMissing(TinyOSError):
    """`dot` is not installed or failed."""


def pa_range(text: str) -> tuple[int, int]:
    """argparse type: ``START-END`` (hex or decimal), END exclusive."""
    start, sep, end = text.partition("-")
    try:
        lo, hi = int(start, 0), int(end, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a range START-END: {text!r} (e.g. 0x40000000-0x40100000)") from None
    if not sep or lo >= hi:
        raise argparse.ArgumentTypeError(f"not a range START-END with START < END: {text!r}")
    return lo, hi


@dataclass
class GraphWritten:
    graph: SharingGraph
    written: str | None  # the file written (DOT or SVG), None for --json alone


def render_svg(dot_text: str, path: Path) -> None:
    """Graphviz ``dot -Tsvg``; GraphvizMissing in one line when it is absent or fails."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing("cow-graph: Graphviz `dot` is not installed (apt-get install graphviz), "
                              "or write the DOT text with --dot FILE")
    done = subprocess.run([dot, "-Tsvg", "-o", str(path)], input=dot_text.encode(), capture_output=True, timeout=60)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise GraphvizMissing(f"cow-graph: dot failed: {reason[0] if reason else done.returncode}")


@command
class CowGraphCommand(TinyOSCommand):
    """Draw the sharing picture: processes -> tracked frames, edges labelled with VA and live PTE permissions.

    Usage: cow-graph [--pid N ...] [--pa START-END] (--svg FILE | --dot FILE) [--json]
    One box per process, one ellipse per tracked frame (filled: COW; dashed: tracked but
    private) with its refs; frames with a cow-check violation and flagged sharers (a
    contradiction cow-status shows) in red. --pid: only frames these processes share
    (their edges only); --pa: only frames in [START, END). --svg renders with Graphviz
    `dot`; --dot writes the DOT text (no Graphviz needed). --json prints the graph.
    Example:
      (gdb) cow-graph --svg /tmp/cow.svg
      (gdb) cow-graph --pid 2 --pa 0x40000000-0x40010000 --dot /tmp/cow.dot"""

    name = "cow-graph"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--pid", type=int, nargs="+", help="only frames shared by these processes")
        parser.add_argument("--pa", type=pa_range, metavar="START-END", help="only frames in [START, END)")
        out = parser.add_mutually_exclusive_group()
        out.add_argument("--svg", metavar="FILE", help="render an SVG with Graphviz dot")
        out.add_argument("--dot", metavar="FILE", help="write the DOT text")

    def run(self, s: Session, args: argparse.Namespace) -> GraphWritten:
        if not (args.svg or args.dot or args.json):
            raise UsageError("cow-graph: say where: --svg FILE or --dot FILE (or --json)")
        report = run_check(s)  # stopped, decoded once; its reads are cached for the status below
        state = s.state()
        table = state.processes()
        status = build_status(state.cow(), state.pte_lookup(), limit=0, conventions=state.conventions())
        names = {p.pid: p.name for p in table.processes}
        graph = build_graph(status, report, names, set(args.pid) if args.pid else None, args.pa)
        target = args.svg or args.dot
        if target:
            text = to_dot(graph)
            if args.svg:
                render_svg(text, Path(target))
            else:
                try:
                    Path(target).write_text(text)
                except OSError as exc:
                    raise UsageError(f"cow-graph: cannot write {target}: {exc.strerror}") from None
        return GraphWritten(graph, target)

    def format_text(self, model: GraphWritten) -> str:
        g = model.graph
        red = sum(bool(f.violations) for f in g.frames) + sum(bool(e.flags) for e in g.edges)
        return (f"cow-graph: {counted(len(g.processes), 'process')}, {counted(len(g.frames), 'frame')}, "
                f"{counted(len(g.edges), 'mapping')}{f', {red} in red' if red else ''} -> {model.written}")
