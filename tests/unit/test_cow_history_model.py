"""tinyos/history.py: pairing reverse stops into entries, the ends, the text face."""

from gdb_tinyos.core.address import Address
from gdb_tinyos.tinyos.cow import SlotFields
from gdb_tinyos.tinyos.history import (
    END_FIRST_SHARED, END_LIMIT, END_RECORDING, Change, HistoryWalk, StopPoint, changes, history_text, slot_values,
)

FREE = slot_values(SlotFields(False, 0, 0, 2, (), ()))
SHARED = slot_values(SlotFields(True, 0x40006000, 2, 1, (0x800000, 0x800000), (1, 2)))
ONE = slot_values(SlotFields(True, 0x40006000, 1, 1, (0x800000,), (1,)))


def stop(icount: int, function: str = "f") -> StopPoint:
    return StopPoint(icount, Address(0x1004), Address(0x1000), function, (function, "caller"))


def test_a_stop_shows_the_write_it_follows_and_the_next_older_stop_what_it_overwrote():
    walk = HistoryWalk(dict(ONE), until_untracked=True)
    assert walk.observe(stop(30, "remove_mapping"), ONE)          # after 2 -> 1: nothing paired yet
    assert walk.observe(stop(20, "share"), SHARED)                # before it: 2
    assert not walk.observe(stop(10), FREE)                       # before the share: free -> ends
    assert walk.end == END_FIRST_SHARED
    first, second = walk.entries
    assert first.at.icount == 30 and Change("ref_count", "2", "1") in first.changes
    assert second.at.function == "share" and Change("tracked", "no", "yes") in second.changes
    assert Change("process_ids", "-", "1, 2") in second.changes


def test_unchanged_values_make_no_entry_and_the_limit_counts_entries():
    walk = HistoryWalk({"x": "1"}, limit=1)
    assert walk.observe(stop(9), {"x": "1"})
    assert walk.observe(stop(8), {"x": "1"})                      # same value written: no entry
    assert not walk.observe(stop(7), {"x": "0"})
    assert walk.end == END_LIMIT and [e.at.icount for e in walk.entries] == [8]


def test_the_recording_start_closes_the_last_write():
    walk = HistoryWalk({"x": "2"})
    walk.observe(stop(5), {"x": "2"})
    walk.at_recording_start({"x": "0"})
    assert walk.end == END_RECORDING and walk.entries[0].changes == (Change("x", "0", "2"),)


def test_a_value_watched_later_is_compared_only_once_known():
    assert changes({"a": "1"}, {"a": "2", "PTE": "0x0"}) == (Change("a", "1", "2"),)


def test_text_lists_entries_newest_first_and_the_ending():
    walk = HistoryWalk(dict(ONE), until_untracked=True)
    walk.observe(stop(30, "remove_mapping"), ONE)
    walk.observe(stop(20, "share"), SHARED)
    walk.observe(stop(10), FREE)
    text = history_text(walk.finish("frame 0x40006000", stop(40), ("slot",), returned_to=40))
    lines = text.splitlines()
    assert lines[2] == "icount 30  pc 0x1000 in remove_mapping"
    assert lines[3].split() == ["ref_count", "2", "->", "1"] and "    called from: caller" in lines
    assert text.index("icount 30") < text.index("icount 20")
    assert lines[-1].startswith("end: the frame was first shared") and lines[-1].endswith("back at icount 40")
