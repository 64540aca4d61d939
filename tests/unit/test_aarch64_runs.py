"""The physical runs of a virtual window (gdb_tinyos.aarch64.runs).

Held equal to the plain definition -- translate each 4 KiB page of the window on its own
(Translator.translate) and put the pieces one after the other -- on hand-built tables whose
expected runs follow from their construction, and on random address spaces.
"""

from __future__ import annotations

import random

import pytest

from gdb_tinyos.aarch64 import Translator
from gdb_tinyos.aarch64.runs import dumped_runs, merged_runs, physical_runs
from gdb_tinyos.core.errors import MemoryReadError, TranslationError

# Descriptor bits (Arm ARM, VMSAv8-64 descriptor formats).
TABLE = PAGE = 0b11
BLOCK = 0b01
AF = 1 << 10
NORMAL = 1 << 2  # AttrIndx=1 -> MAIR Attr1 (Normal WB)
RO = 0b10 << 6  # AP[2]: read-only
CONTIGUOUS = 1 << 52
MAIR = 0xFF << 8
# TCR_EL1: T0SZ=T1SZ=16 (48-bit VA, walks start at level 0), TG1=4K, IPS=48 bits; HA is bit 39.
TCR = 16 | 16 << 16 | 0b10 << 30 | 0b101 << 32
HA = 1 << 39

KB4, MB2 = 0x1000, 0x20_0000
BASE = 0xFFFF_0000_4000_0000  # TTBR1: L0 index 0, L1 index 1, L2 index 0
L2_ENTRIES = 8  # the spaces below map (at most) BASE .. BASE + 16 MiB


def kernel_space(image, l2: dict[int, int | dict[int, int]], *, tcr: int = TCR) -> None:
    """TTBR1 tables mapping BASE + i * 2 MiB by ``l2[i]``: a raw block descriptor, or
    ``{page index: raw page descriptor}`` for an L3 table; everything else invalid."""
    l0, l1, l2_table = image.table(), image.table(), image.table()
    image.set(l0, 0, l1 | TABLE)
    image.set(l1, 1, l2_table | TABLE)
    for i, entry in l2.items():
        if isinstance(entry, int):
            image.set(l2_table, i, entry)
            continue
        l3 = image.table()
        image.set(l2_table, i, l3 | TABLE)
        for j, raw in entry.items():
            image.set(l3, j, raw)
    image.registers(TCR_EL1=tcr, SCTLR=1, MAIR_EL1=MAIR, TTBR0_EL1=0, TTBR1_EL1=l0)


def page(frame: int, attrs: int = AF | NORMAL) -> int:
    return frame | attrs | PAGE


def block(frame: int, attrs: int = AF | NORMAL) -> int:
    return frame | attrs | BLOCK


def per_page(translator: Translator, va: int, size: int) -> list[tuple[int, int]]:
    """The definition: each 4 KiB page of the window translated on its own, in order."""
    pieces, at = [], va
    while at < va + size:
        n = min(KB4 - at % KB4, va + size - at)
        pieces.append((translator.translate(at), n))
        at += n
    return pieces


def cut_into_pages(runs: list[tuple[int, int]], va: int) -> list[tuple[int, int]]:
    """``runs`` (read from ``va`` on) cut again at every 4 KiB page boundary of the VA."""
    pieces, at = [], va
    for pa, n in runs:
        while n:
            take = min(KB4 - at % KB4, n)
            pieces.append((pa, take))
            pa, n, at = pa + take, n - take, at + take
    return pieces


def assert_runs_of_the_window(translator: Translator, va: int, size: int) -> list[tuple[int, int]]:
    """physical_runs equals the definition (or fails where it does), with no two runs
    that could have been one."""
    try:
        expected = per_page(Translator(translator.target), va, size)
    except TranslationError as exc:
        with pytest.raises(MemoryReadError) as raised:
            physical_runs(translator, va, size)
        assert str(raised.value) == f"cannot read {size} bytes at {va:#x}: {exc}"
        assert (raised.value.address, raised.value.size) == (va, size)
        return []
    runs = physical_runs(translator, va, size)
    assert cut_into_pages(runs, va) == expected
    assert all(pa + n != next_pa for (pa, n), (next_pa, _) in zip(runs, runs[1:]))
    return runs


# -- hand-built windows ---------------------------------------------------------------------


def test_a_window_across_pages_in_scattered_frames(image):
    kernel_space(image, {0: {0: page(0x4200_0000), 1: page(0x4300_0000), 2: page(0x4300_1000)}})
    translator = Translator(image.target)
    runs = assert_runs_of_the_window(translator, BASE + 0xFFC, 0x1008)
    # page 0's last 4 bytes, then pages 1 and 2 back to back in physical memory too
    assert runs == [(0x4200_0FFC, 4), (0x4300_0000, 0x1004)]
    assert dumped_runs(translator, BASE + 0xFFC, 0x1008) == runs  # one dump answered


def test_a_window_over_a_2mib_block_is_one_run(image):
    kernel_space(image, {1: block(0x4060_0000)})
    translator = Translator(image.target)
    runs = assert_runs_of_the_window(translator, BASE + MB2 + 0x1234, 0x10_0000)
    assert runs == [(0x4060_1234, 0x10_0000)]


def test_pages_with_different_attributes_in_consecutive_frames_are_one_run(image):
    # The dump cuts its ranges where the attributes change; a read does not care.
    kernel_space(image, {0: {0: page(0x4400_0000, AF | NORMAL | RO), 1: page(0x4400_1000)}})
    translator = Translator(image.target)
    assert assert_runs_of_the_window(translator, BASE, 2 * KB4) == [(0x4400_0000, 2 * KB4)]
    assert dumped_runs(translator, BASE, 2 * KB4) == [(0x4400_0000, 2 * KB4)]


def five_pages(first: int, odd: dict[int, int] | None = None) -> dict[int, int]:
    """L3 entries 0..4 mapping consecutive frames from ``first`` (5 pages: enough for a
    dump), page i by ``odd[i]`` when given."""
    odd = odd or {}
    return {i: odd.get(i, page(first + i * KB4)) for i in range(5)}


@pytest.mark.parametrize(("page_1", "why"), [
    (0, "level 3: the descriptor is invalid"),         # unmapped
    (page(0x4200_1000, NORMAL), "access flag"),   # AF=0 and no TCR.HA: the walk faults
])
def test_a_page_that_does_not_translate_refuses_the_dump_and_the_walk_names_it(image, page_1, why):
    kernel_space(image, {0: five_pages(0x4200_0000, {1: page_1})})
    translator = Translator(image.target)
    assert dumped_runs(translator, BASE, 5 * KB4) is None
    with pytest.raises(MemoryReadError, match=rf"cannot read 20480 bytes at {BASE:#x}: cannot translate {BASE + KB4:#x}: .*{why}"):
        physical_runs(translator, BASE, 5 * KB4)
    assert_runs_of_the_window(translator, BASE, 5 * KB4)


def test_access_flag_clear_with_hardware_update_maps(image):
    # TCR_EL1.HA: the hardware would set AF on access, so the page is readable.
    kernel_space(image, {0: five_pages(0x4200_0000, {1: page(0x4200_1000, NORMAL)})}, tcr=TCR | HA)
    translator = Translator(image.target)
    assert dumped_runs(translator, BASE, 5 * KB4) == [(0x4200_0000, 5 * KB4)]
    assert assert_runs_of_the_window(translator, BASE, 5 * KB4) == [(0x4200_0000, 5 * KB4)]


def test_a_misprogrammed_contiguous_hint_refuses_the_dump_only(image):
    # One entry of a 16-entry group carries the hint: the dump reports it, a walk ignores it.
    kernel_space(image, {0: five_pages(0x4200_0000, {0: page(0x4200_0000, AF | NORMAL | CONTIGUOUS),
                                                     3: page(0x4500_0000)})})
    translator = Translator(image.target)
    assert dumped_runs(translator, BASE, 5 * KB4) is None
    assert assert_runs_of_the_window(translator, BASE, 5 * KB4) == [
        (0x4200_0000, 3 * KB4), (0x4500_0000, KB4), (0x4200_4000, KB4)]


def test_with_the_mmu_off_the_window_is_its_own_address(image):
    image.registers(TCR_EL1=TCR, SCTLR=0, MAIR_EL1=MAIR, TTBR0_EL1=0, TTBR1_EL1=0)
    assert physical_runs(Translator(image.target), 0x4000_0FF0, 0x20) == [(0x4000_0FF0, 0x20)]


def test_an_empty_window_has_no_runs_even_unmapped(image):
    kernel_space(image, {})
    assert physical_runs(Translator(image.target), BASE, 0) == []


def test_merged_runs_asks_once_per_span_and_words_a_failure_for_the_window():
    asked = []

    def locate(at):
        asked.append(at)
        if at >= 0x3000:
            raise TranslationError(f"cannot translate {at:#x}: no mapping")
        return 0x9000 + at, KB4 - at % KB4

    assert merged_runs(0x0FF0, 0x1020, locate) == [(0x9FF0, 0x1020)]
    assert asked == [0x0FF0, 0x1000, 0x2000]
    with pytest.raises(MemoryReadError, match="cannot read 8192 bytes at 0x2000: cannot translate 0x3000"):
        merged_runs(0x2000, 0x2000, locate)


# -- random address spaces ------------------------------------------------------------------


def random_space(image, rng: random.Random) -> None:
    """Up to 16 MiB of TTBR1 mappings: blocks and L3 tables of pages, mostly in consecutive
    frames, sometimes scattered, read-only, unmapped, with AF clear or a stray
    Contiguous hint; TCR.HA set one time in five."""
    l2: dict[int, int | dict[int, int]] = {}
    for i in range(L2_ENTRIES):
        kind = rng.random()
        if kind < 0.1:
            continue  # unmapped 2 MiB
        if kind < 0.35:
            l2[i] = block(rng.randrange(0x400, 0x600) * MB2, NORMAL | (AF if rng.random() < 0.9 else 0))
            continue
        pages, frame, attrs = {}, rng.randrange(0x8_0000, 0xC_0000) * KB4, AF | NORMAL
        for j in range(512):
            frame = frame + KB4 if rng.random() < 0.8 else rng.randrange(0x8_0000, 0xC_0000) * KB4
            if rng.random() < 0.05:
                attrs ^= RO
            if rng.random() < 0.02:
                continue  # unmapped page
            odd = (AF if rng.random() < 0.01 else 0) | (CONTIGUOUS if rng.random() < 0.005 else 0)
            pages[j] = page(frame, attrs ^ odd)
        l2[i] = pages
    kernel_space(image, l2, tcr=TCR | (HA if rng.random() < 0.2 else 0))


def random_window(rng: random.Random) -> tuple[int, int]:
    start = BASE + rng.randrange(L2_ENTRIES * MB2)
    size = rng.choice([rng.randrange(1, 64), rng.randrange(1, 6 * KB4), rng.randrange(1, 4 << 20)])
    return start, size


@pytest.mark.parametrize("seed", range(12))
def test_random_windows_are_the_pages_translated_one_by_one(image_factory, seed):
    rng = random.Random(seed)
    image = image_factory()
    random_space(image, rng)
    translator = Translator(image.target)
    for _ in range(25):
        assert_runs_of_the_window(translator, *random_window(rng))
