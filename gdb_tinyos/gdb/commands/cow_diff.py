"""``cow-snapshot`` and ``cow-diff``: keep the decoded COW state at a stop, show what changed.

The logic is :mod:`gdb_tinyos.tinyos.diff`. Once either command has been used, the state at
every stop is kept automatically (the stop event's handler below), so a bare ``cow-diff``
compares the previous stop with now. Decoding costs a read of the whole manager per stop
(about a second over the gdbstub): ``cow-snapshot --auto off`` stops it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path

import gdb

from ...core.errors import TinyOSError
from ...core.render import counted
from ...tinyos.diff import CowDiff, CowSnapshot, diff, diff_text, snapshot_to_plain, take_snapshot
from .. import events
from ..args import UsageError
from ..base import TinyOSCommand
from ..registry import command
from ..session import Session, session
from ..target import require_stopped


@dataclass
class SnapshotStore:
    """Named snapshots, and the automatic ones of the last two stops."""

    named: dict[str, CowSnapshot] = field(default_factory=dict)
    auto: bool = False
    stops: int = 0
    previous: CowSnapshot | str | None = None  # a snapshot, or why it could not be taken
    current: CowSnapshot | str | None = None

    def on_stop(self) -> None:
        self.stops += 1
        if not self.auto:
            return
        self.previous = self.current
        try:
            self.current = take_snapshot(session().state(), f"stop {self.stops}{_where()}")
        except (TinyOSError, gdb.error) as exc:
            self.current = f"stop {self.stops} could not be decoded: {exc}"

    def arm(self, now: CowSnapshot | None = None) -> None:
        """Start keeping each stop's state; ``now`` is this stop's, when already decoded."""
        if not self.auto:
            self.auto = True
            self.previous = None
            self.current = now


STORE = SnapshotStore()


def _where() -> str:
    try:
        name = gdb.selected_frame().name()
    except gdb.error:
        return ""
    return f" in {name}" if name else ""


def _on_stop(_event) -> None:
    STORE.on_stop()


events.on("stop", _on_stop)


def _now(s: Session, label: str = "now") -> CowSnapshot:
    require_stopped()
    return take_snapshot(s.state(), label)


def _core_snapshot(s: Session, path: str, label: str) -> CowSnapshot:
    from ...aarch64.coredump import CoreTarget  # noqa: PLC0415 - only for --core
    from ...tinyos.state import KernelModel, KernelState  # noqa: PLC0415

    if not Path(path).is_file():
        raise UsageError(f"cow-snapshot: no core file {path}")
    with CoreTarget(path, kernel_elf=s.kernel_path()) as core:
        return take_snapshot(KernelState(KernelModel(s.debuginfo()), core), label)


@dataclass
class SnapshotTaken:
    name: str
    source: str
    frames: int
    ptes: int
    processes: int
    auto: bool
    snapshot: dict | None = None  # the whole snapshot with --json


@command
class CowSnapshotCommand(TinyOSCommand):
    """Keep the decoded COW state now under NAME, for a later `cow-diff NAME`.

    Usage: cow-snapshot [NAME] [--core FILE] [--list] [--auto on|off] [--json]
    Keeps every tracked frame (refs, COW flag, sharers), every live process's user PTEs,
    the statistics and the process list. --core FILE: the state in a `tinyos-dump` core
    instead of the live target. From the first use on, the state at every stop is kept too
    (for a bare `cow-diff`); --auto off stops that (each costs one decode).
    Example:
      (gdb) cow-snapshot before-fork
      (gdb) continue
      (gdb) cow-diff before-fork
      (gdb) cow-snapshot dumped --core /tmp/forkwrite.core"""

    name = "cow-snapshot"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("snapshot", nargs="?", metavar="NAME", help="name to keep it under (default: snap-N)")
        parser.add_argument("--core", metavar="FILE", help="decode a tinyos-dump core instead of the live target")
        parser.add_argument("--list", action="store_true", help="list the snapshots kept")
        parser.add_argument("--auto", choices=("on", "off"), help="keep the state at every stop (on by first use)")

    def run(self, s: Session, args: argparse.Namespace):
        if args.auto == "off":
            STORE.auto = False
        elif args.auto == "on":
            STORE.arm()
        if args.list:
            return [SnapshotTaken(n, snap.label, len(snap.pages), len(snap.ptes), len(snap.processes), STORE.auto)
                    for n, snap in STORE.named.items()]
        if args.auto is not None and args.snapshot is None:
            return f"cow-snapshot: automatic snapshots at each stop {'on' if STORE.auto else 'off'}"
        name = args.snapshot or f"snap-{len(STORE.named) + 1}"
        label = f"{name} (core {args.core})" if args.core else f"{name} (stop {STORE.stops}{_where()})"
        snap = _core_snapshot(s, args.core, label) if args.core else _now(s, label)
        STORE.named[name] = snap
        if args.auto is None:
            STORE.arm(None if args.core else replace(snap, label=f"stop {STORE.stops}{_where()}"))
        whole = snapshot_to_plain(snap) if args.json else None
        return SnapshotTaken(name, label, len(snap.pages), len(snap.ptes), len(snap.processes), STORE.auto, whole)

    def format_text(self, model) -> str:
        if isinstance(model, str):
            return model
        if isinstance(model, list):
            if not model:
                return "cow-snapshot: no snapshots kept"
            return "\n".join(f"{m.name}: {m.source}, {counted(m.frames, 'frame')}, {counted(m.ptes, 'PTE')}, "
                             f"{counted(m.processes, 'process')}" for m in model)
        source = model.source if model.source != model.name else "this stop"
        return (f"cow-snapshot: kept {model.name} = {source}: {counted(model.frames, 'tracked frame')}, "
                f"{counted(model.ptes, 'user PTE')}, {counted(model.processes, 'process')}")


@command
class CowDiffCommand(TinyOSCommand):
    """Show what changed in the COW state: since the previous stop, since a snapshot, or between two.

    Usage: cow-diff [NAME [NAME2]] [--json]
    Frames tracked or untracked, refs / COW flag / sharers changed, each affected PTE
    (mapping a tracked frame or recorded as a sharer, before or after) with its frame and
    permissions before and after, statistics deltas, processes started or gone.
    No NAME: the state at the previous stop -> now (kept automatically once cow-snapshot or
    cow-diff has been used). NAME: that snapshot -> now. NAME NAME2: between two snapshots.
    Example:
      (gdb) cow-diff
      (gdb) cow-diff before-fork
      (gdb) cow-diff before-fork after-exit --json"""

    name = "cow-diff"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="snapshot names (see cow-snapshot --list)")

    def run(self, s: Session, args: argparse.Namespace) -> CowDiff:
        if len(args.names) > 2:
            raise UsageError("cow-diff: at most two snapshot names")
        snaps = [self._named(n) for n in args.names] or [self._previous_stop(s)]
        if len(snaps) == 1:
            snaps.append(_now(s, f"now (stop {STORE.stops}{_where()})"))  # reads cached at this stop
        return diff(*snaps)

    @staticmethod
    def _named(name: str) -> CowSnapshot:
        if name not in STORE.named:
            kept = ", ".join(STORE.named) or "none"
            raise UsageError(f"cow-diff: no snapshot named {name!r} (kept: {kept})")
        return STORE.named[name]

    @staticmethod
    def _previous_stop(s: Session) -> CowSnapshot:
        if not STORE.auto:
            STORE.arm(_now(s, f"stop {STORE.stops}{_where()}"))
            raise UsageError("cow-diff: no state of a previous stop kept yet; from now on each stop's state is "
                             "kept (or take one with `cow-snapshot NAME`)")
        if isinstance(STORE.previous, str):
            raise UsageError(f"cow-diff: the previous stop's state is unknown: {STORE.previous}")
        if STORE.previous is None:
            raise UsageError("cow-diff: no stop since snapshots started: continue to the next stop first")
        return STORE.previous

    def format_text(self, model: CowDiff) -> str:
        return diff_text(model)
