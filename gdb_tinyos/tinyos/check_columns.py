"""Which tracked pages ``cow-check`` must look at one by one: the rest are proven clean
from columns, as sets compared in C.

A page's own rules and its PTE rules (:mod:`.check`) all hold when: its ref_count is what
its recorded mappings make under the conventions, it is COW, its frame is tracked by no
other slot, and its recorded (pid, VA page, frame) triples are exactly the live user PTEs
mapping the frame, none of them writable. :func:`suspect_pages` checks that for every page
at once. Usually the record is right, and that is proven column by column: each recorded
(pid, VA) maps its own frame (one bisection each), no two repeat, and the tracked frames
carry as many live PTEs as the record has sharers. Otherwise the two sides are compared as
sets of triples -- the recorded ones from the summary's sharer columns, the live ones from
the mapping index's runs cut at the tracked frames -- and the pages where anything differs
are returned (a superset of those with a violation); :func:`~.check.check_cow` runs the full
per-page rules on those only. Without index-paired sharers (a pid set) or with a run not
page aligned, every page is a suspect.

Example::

    suspects = suspect_pages(summary, index, live={1, 2}, conventions=conv)
    [summary.pages_at(suspects)]     # usually empty on a healthy kernel
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter

from ..core.address import PAGE_SIZE
from .conventions import Conventions
from .cow_columns import CowSummary
from .mappings import MappedRun, MappingIndex

def suspect_pages(cow: CowSummary, index: MappingIndex | None, live: set[int],
                  conventions: Conventions) -> Sequence[int]:
    """Indices (into the summary's pages, ascending) of every page that may break a rule;
    ``index`` None: the page's own rules only."""
    n = cow.tracked
    if not cow.paired:
        return range(n)
    suspects: set[int] = set()
    # its own record: ref_count (expected_refs adds a constant), is_cow
    expected = list(map(conventions.expected_refs(0).__add__, cow.vas_lens))
    if expected != list(cow.refs):
        suspects.update(k for k in range(n) if cow.refs[k] != expected[k])
    if cow.cow_flags.count(1) != n:
        suspects.update(k for k in range(n) if cow.cow_flags[k] != 1)
    # a frame tracked twice
    page_of = dict(zip(cow.pas, range(n)))
    if len(page_of) != n:
        twice = {pa for pa, times in Counter(cow.pas).items() if times > 1}
        suspects.update(k for k in range(n) if cow.pas[k] in twice)
    if index is None or not _record_is_live(cow, index, live):
        found = _record_suspects(cow, index, live, page_of)
        if found is None:
            return range(n)
        suspects.update(found)
    return sorted(suspects)


def _record_is_live(cow: CowSummary, index: MappingIndex, live: set[int]) -> bool:
    """Whether the recorded (pid, VA page, frame) triples are distinct and exactly the live
    user PTEs mapping tracked frames, every pid live and no such PTE writable: the usual
    case, proven column by column (each recorded page maps its frame, and the live PTEs on
    tracked frames are as many as the record)."""
    _, vas, pids, _ = sharers = cow.sharers(range(cow.tracked))
    if not set(pids) <= live:
        return False
    on_tracked = _live_on_frames(cow, index)
    return (on_tracked is not None and on_tracked == len(vas)
            and index.maps_exactly(pids, vas, list(map(cow.pas.__getitem__, sharers.pages))))


def _live_on_frames(cow: CowSummary, index: MappingIndex) -> int | None:
    """How many live PTEs of the index map a tracked frame; None when a run is not page
    aligned or maps one writable."""
    spans = _tracked_spans(cow, index)
    if spans is None or any(run.writable for run, _ in spans):
        return None
    return sum(len(inside) for _, inside in spans)


def _tracked_spans(cow: CowSummary, index: MappingIndex) -> list[tuple[MappedRun, list[int]]] | None:
    """Each run of the index that maps tracked frames, with those frames (ascending); None
    when a run is not page aligned."""
    frames = sorted(set(cow.pas))
    spans = []
    for run in index.runs:
        if run.va % PAGE_SIZE or run.pa % PAGE_SIZE:
            return None
        lo, hi = bisect_left(frames, run.pa), bisect_left(frames, run.pa_end)
        if lo < hi:
            spans.append((run, frames[lo:hi]))
    return spans


def _record_suspects(cow: CowSummary, index: MappingIndex | None, live: set[int],
                     page_of: dict[int, int]) -> set[int] | None:
    """The pages whose recorded triples differ from the live ones (or repeat, or name a
    dead pid) and those whose frame some PTE maps writable; None when a run is not page
    aligned. Which page recorded a triple is looked up only when something differs."""
    recorded, pages = cow.sharer_pages()
    suspects: set[int] = set()
    record = set(recorded)
    page_by_triple = lambda: dict(zip(recorded, pages))  # noqa: E731
    if len(record) != len(recorded):
        by_triple = page_by_triple()
        suspects.update(by_triple[t] for t, times in Counter(recorded).items() if times > 1)
    if index is None:
        return suspects
    if not set(map(itemgetter(0), recorded)) <= live:
        by_triple = page_by_triple()
        suspects.update(by_triple[t] for t in record if t[0] not in live)
    mapped = _live_triples(cow, index)
    if mapped is None:
        return None
    triples, writable = mapped
    if record != triples:  # one C comparison when the record is right
        by_triple = page_by_triple()
        suspects.update(by_triple[t] for t in record - triples)
        suspects.update(page_of[pa] for _, _, pa in triples - record)
    suspects.update(page_of[pa] for pa in writable)
    return suspects


def _live_triples(cow: CowSummary, index: MappingIndex) -> tuple[set, set[int]] | None:
    """(pid, VA page, frame) of every PTE of the index mapping a tracked frame, and the
    frames some of them map writable; None when a run is not page aligned."""
    spans = _tracked_spans(cow, index)
    if spans is None:
        return None
    triples: set[tuple[int, int, int]] = set()
    writable: set[int] = set()
    for run, inside in spans:
        triples.update(zip(repeat(run.pid), map((run.va - run.pa).__add__, inside), inside))
        if run.writable:
            writable.update(inside)
    return triples, writable
