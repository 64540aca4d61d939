"""A location's history in a replay, newest first: the model behind ``cow-history`` and ``cow-blame``.

The gdb driver (:mod:`gdb_tinyos.gdb.commands.cow_history`) runs a recording backwards
with write watchpoints and, at each stop, reads the watched memory and gives it here as
named values (``{"ref_count": "2", "PTE pid 1 va 0x800000": "..."}``). QEMU stops a
reverse run just *after* the watched write, so the values at a stop are the write's
result and the values at the next (older) stop are what it overwrote: :class:`HistoryWalk`
pairs consecutive stops into :class:`HistoryEntry` changes. Pure: no gdb, no target.

Example::

    walk = HistoryWalk(slot_values(page), limit=None, until_untracked=True)
    walk.observe(stop_after_write, values_there)       # True: keep going back
    walk.observe(older_stop, values_there)             # the first entry is now known
    history = walk.finish(subject, start, watched, returned_to=start.icount)
    print(history_text(history))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..aarch64.descriptors import LeafDescriptor, decode_descriptor
from ..aarch64.granule import Granule
from ..core.address import Address
from .cow import SlotFields

# Why a walk back ended.
END_FIRST_SHARED = "first shared"  # the slot was free before this entry
END_LIMIT = "limit"
END_RECORDING = "start of the recording"

TRACKED, REFS, IS_COW, VAS, PIDS = "tracked", "ref_count", "is_cow", "virtual_addresses", "process_ids"
FREE = "-"  # a field of a free slot: its bytes mean nothing


@dataclass(frozen=True)
class StopPoint:
    """Where a reverse run stopped: QEMU's instruction count there (``monitor info
    replay``), the pc, the writing instruction (the one before the pc when it is a
    store), its function and the backtrace's top frames (``function`` lines)."""

    icount: int
    pc: Address
    writer: Address | None
    function: str | None
    frames: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class HistoryEntry:
    """One write, seen at ``at``: each watched value it changed."""

    at: StopPoint
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class History:
    subject: str  # "frame 0x40006000 (COW_MANAGER.cow_pages[6])" or a location
    start: StopPoint
    watched: tuple[str, ...]  # what was watched, in words
    entries: tuple[HistoryEntry, ...]  # newest first
    end: str  # END_*
    returned_to: int  # the icount the command left the replay at (== start.icount)


def slot_values(slot: SlotFields) -> dict[str, str]:
    """A slot's watched fields as text (a free slot: tracked no, the rest ``-``)."""
    if not slot.occupied:
        return {TRACKED: "no", REFS: FREE, IS_COW: FREE, VAS: FREE, PIDS: FREE}
    cow = {0: "no", 1: "yes"}.get(slot.is_cow, str(slot.is_cow))
    return {TRACKED: "yes", REFS: str(slot.ref_count), IS_COW: cow,
            VAS: ", ".join(f"{va:#x}" for va in slot.virtual_addresses) or "none",
            PIDS: ", ".join(map(str, slot.process_ids)) or "none"}


def pte_value(raw: int, level: int, granule: Granule) -> str:
    """A translation table entry in words: ``0x...: page -> 0x40006000 EL0:R- ...``."""
    desc = decode_descriptor(raw, level, granule)
    if isinstance(desc, LeafDescriptor):
        return f"{raw:#x} ({desc.describe()})"
    return f"{raw:#x} ({desc.kind.value})"


def word_value(data: bytes) -> str:
    """Bytes of a watched location: a little-endian integer up to 8 bytes, else hex bytes."""
    if len(data) in (1, 2, 4, 8):
        return f"{int.from_bytes(data, 'little'):#x}"
    return data.hex(" ")


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[Change, ...]:
    """The values that differ, in ``after``'s order; names only one side knows are skipped
    (a watch added on the way back has no value from before it was set)."""
    return tuple(Change(k, before[k], v) for k, v in after.items() if k in before and before[k] != v)


@dataclass
class HistoryWalk:
    """Pairs consecutive reverse stops into entries and says when to stop going back.

    ``until_untracked``: end at the write that made the slot tracked (its value
    ``tracked`` goes no -> yes): where the frame was first shared."""

    values: dict[str, str]  # at the newest point observed (first: the start)
    limit: int | None = None
    until_untracked: bool = False
    entries: list[HistoryEntry] = field(default_factory=list)
    end: str | None = None
    _pending: StopPoint | None = None  # the newest stop, its write not yet paired

    def observe(self, point: StopPoint, values: Mapping[str, str]) -> bool:
        """A stop older than every one before (``values`` read there); False once the
        walk is over (limit reached, or the slot free before the pending write)."""
        self._close(values)
        if self.end is None:
            self._pending, self.values = point, dict(values)
        return self.end is None

    def at_recording_start(self, values: Mapping[str, str]) -> None:
        """No history left: ``values`` are the recording's first state."""
        self._close(values)
        if self.end is None:
            self.end = END_RECORDING

    def _close(self, older: Mapping[str, str]) -> None:
        if self._pending is None:  # the start is not a write: nothing to pair
            return
        found = changes(older, self.values)
        if found:
            self.entries.append(HistoryEntry(self._pending, found))
        if self.until_untracked and older.get(TRACKED) == "no" and self.values.get(TRACKED) == "yes":
            self.end = END_FIRST_SHARED
        elif self.limit is not None and len(self.entries) >= self.limit:
            self.end = END_LIMIT
        self._pending = None

    def finish(self, subject: str, start: StopPoint, watched: tuple[str, ...], returned_to: int) -> History:
        return History(subject, start, watched, tuple(self.entries), self.end or END_RECORDING, returned_to)


_ENDINGS = {
    END_FIRST_SHARED: "the frame was first shared at the oldest entry (its slot was free before)",
    END_LIMIT: "--limit reached (older changes not looked for)",
    END_RECORDING: "no older change: the recording starts here",
}


def history_text(h: History) -> str:
    """The text face: a header, one block per entry (newest first), how it ended."""
    lines = [f"History of {h.subject}, newest first, from icount {h.start.icount} (pc {h.start.pc:#x})",
             f"watching: {'; '.join(h.watched)}"]
    if not h.entries:
        lines.append("no change found")
    width = max((len(c.field) for e in h.entries for c in e.changes), default=0)
    for e in h.entries:
        pc = e.at.writer if e.at.writer is not None else e.at.pc
        lines.append(f"icount {e.at.icount}  pc {pc:#x} in {e.at.function or '??'}")
        lines += [f"    {c.field:<{width}}  {c.old} -> {c.new}" for c in e.changes]
        if len(e.at.frames) > 1:
            lines.append("    called from: " + " <- ".join(e.at.frames[1:]))
    lines.append(f"end: {_ENDINGS[h.end]}; back at icount {h.returned_to}"
                 + ("" if h.returned_to == h.start.icount else f" (started at {h.start.icount})"))
    return "\n".join(lines)
