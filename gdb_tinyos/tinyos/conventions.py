"""How a kernel keeps its COW books: the rules its own manager follows.

Kernels differ and each is right by its own rules. Ours: ``ref_count`` = the number of
mappings, ``process_ids[i]`` is the pid of ``virtual_addresses[i]``, every statistic
maintained. Upstream TinyOS: ``ref_count`` may count the owner too, ``process_ids`` is a
set of sharers (not parallel to the VAs), ``memory_saved_bytes`` and
``metadata_memory_bytes`` never written. A check holds a kernel to its own conventions and
lists the rules it skipped, with the reason.

Where each comes from, strongest first: a gdb parameter (``set tinyos cow-refs owner``),
the kernel's debugger contract (``TINYOS_DEBUG_CONTRACT``), what the decoded state shows
(a page with 2 VAs and 1 pid cannot be parallel), and our kernel's rules as the default.

Example::

    conv = Conventions.detect(contract=None, pages=cow.pages, statistics=cow.statistics)
    conv.expected_refs(page)           # len(vas) or len(vas) + 1
    conv.maintains("memory_saved_bytes")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

STATISTICS = ("cow_pages_count", "cow_faults_handled", "pages_duplicated", "memory_saved_bytes",
              "metadata_memory_bytes", "peak_cow_pages")
# Statistics whose value a check can recompute from the pages; a kernel that leaves one at
# 0 while the pages say otherwise does not maintain it.
RECOMPUTABLE = ("memory_saved_bytes", "metadata_memory_bytes")

REFS_MAPPINGS, REFS_OWNER = "mappings", "owner"
PIDS_PARALLEL, PIDS_SET = "parallel", "set"


def saved_pages(refs: Sequence[int], uncopied: int) -> int:
    """Σ max(r − ``uncopied``, 0) over ``refs``, in C: Σ r − n·u, plus back what the
    small counts (r < u) took below zero."""
    return sum(refs) - uncopied * len(refs) + sum((uncopied - r) * refs.count(r) for r in range(uncopied))


@dataclass(frozen=True)
class Conventions:
    refs: str = REFS_MAPPINGS  # ref_count = mappings, or mappings + 1 (the owner)
    pids: str = PIDS_PARALLEL  # process_ids parallel to virtual_addresses, or a set of sharers
    maintained: frozenset[str] = frozenset(STATISTICS)
    efficiency: str = "refs"  # Memory Efficiency's denominator: Σ ref_count ("refs") or cow_pages_count ("pages")
    sources: Mapping[str, str] = field(default_factory=dict)  # convention -> where it came from

    def expected_refs(self, mappings: int) -> int:
        return mappings + (1 if self.refs == REFS_OWNER else 0)

    def mappings(self, ref_count: int) -> int:
        """How many mappings a ref_count stands for under these conventions."""
        return max(ref_count - (1 if self.refs == REFS_OWNER else 0), 0)

    def saved_bytes(self, pages) -> int:
        """Σ (mappings − 1) × 4096: each mapping beyond the first is a frame not copied."""
        return self.saved_bytes_of([p.ref_count for p in pages])

    def saved_bytes_of(self, refs: Sequence[int]) -> int:
        """:meth:`saved_bytes` from the pages' ref_counts alone (a column of them)."""
        return saved_pages(refs, 1 + (1 if self.refs == REFS_OWNER else 0)) * 4096

    @property
    def saved_formula(self) -> str:
        return "Σ(ref_count − 1) × 4096" if self.refs == REFS_MAPPINGS else "Σ(ref_count − 2) × 4096 (ref_count counts the owner)"

    @property
    def pids_parallel(self) -> bool:
        return self.pids == PIDS_PARALLEL

    def maintains(self, statistic: str) -> bool:
        return statistic in self.maintained

    def describe(self) -> list[str]:
        unkept = [s for s in STATISTICS if s not in self.maintained]
        return [
            f"ref_count counts {'each mapping' if self.refs == REFS_MAPPINGS else 'the owner plus each mapping'}"
            f" [{self.sources.get('refs', 'default')}]",
            f"process_ids {'parallel to virtual_addresses' if self.pids == PIDS_PARALLEL else 'is a set of sharers'}"
            f" [{self.sources.get('pids', 'default')}]",
            f"statistics not maintained: {', '.join(unkept) or 'none'} [{self.sources.get('maintained', 'default')}]",
        ]

    @classmethod
    def detect(cls, *, contract: Mapping[str, int] | None = None, pages: Iterable = (),
               statistics=None, overrides: Mapping[str, str] | None = None,
               columns: tuple[Sequence[int], Sequence[int], Sequence[int]] | None = None) -> Conventions:
        """The conventions, each from the strongest source that says anything. The state's
        evidence: ``pages``, or ``columns`` = (ref_counts, VA counts, pid counts) per page."""
        conv, sources = cls(), {}
        if contract:
            conv, sources = _from_contract(conv, contract, sources)
        if columns is None:
            pages = list(pages)
            columns = ([p.ref_count for p in pages], [len(p.virtual_addresses) for p in pages],
                       [len(p.process_ids) for p in pages])
        conv, sources = _from_state(conv, columns, statistics, sources)
        for key, value in (overrides or {}).items():
            if key == "maintained":
                value = frozenset(v for v in value.split(",") if v) if isinstance(value, str) else frozenset(value)
            conv = replace(conv, **{key: value})
            sources[key] = "parameter"
        return replace(conv, sources=sources)


def _from_contract(conv: Conventions, contract: Mapping[str, int], sources: dict) -> tuple[Conventions, dict]:
    if "cow_refs_count_owner" in contract:
        conv = replace(conv, refs=REFS_OWNER if contract["cow_refs_count_owner"] else REFS_MAPPINGS)
        sources["refs"] = "contract"
    if "cow_pids_parallel" in contract:
        conv = replace(conv, pids=PIDS_PARALLEL if contract["cow_pids_parallel"] else PIDS_SET)
        sources["pids"] = "contract"
    if "cow_stats_maintained" in contract:
        mask = contract["cow_stats_maintained"]
        conv = replace(conv, maintained=frozenset(s for i, s in enumerate(STATISTICS) if mask >> i & 1))
        sources["maintained"] = "contract"
    return conv, sources


def _from_state(conv: Conventions, columns: tuple[Sequence[int], Sequence[int], Sequence[int]], statistics,
                sources: dict) -> tuple[Conventions, dict]:
    """What the decoded pages prove (only where the contract said nothing); ``columns`` as
    :meth:`Conventions.detect` (compared in C: no loop per page here)."""
    refs, vas_lens, pids_lens = map(list, columns)
    if "pids" not in sources and vas_lens != pids_lens:
        conv = replace(conv, pids=PIDS_SET)
        sources["pids"] = "state (VAs and pids of different lengths)"
    if "refs" not in sources and refs and refs == list(map((1).__add__, vas_lens)):
        conv = replace(conv, refs=REFS_OWNER)
        sources["refs"] = "state (every ref_count is one more than its mappings)"
    if "maintained" not in sources and statistics is not None:
        # What memory_saved_bytes should hold under the refs convention just decided: an
        # owner-counting kernel that shares nothing yet saves nothing.
        saved = conv.saved_bytes_of(refs)
        unkept = {name for name in RECOMPUTABLE if getattr(statistics, name) == 0 and
                  (saved if name == "memory_saved_bytes" else 1)}
        if unkept:
            conv = replace(conv, maintained=conv.maintained - unkept)
            sources["maintained"] = "state (left at 0 while the pages say otherwise)"
    return conv, sources
