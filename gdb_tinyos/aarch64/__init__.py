"""AArch64 stage-1 translation (EL1&0 regime) on top of the :class:`~gdb_tinyos.core.target.Target` seam.

No gdb here: registers and physical memory come through the target, so the same code
serves live sessions, core dumps and synthetic tests.

- :mod:`.sysregs`: TCR_EL1, SCTLR_EL1, MAIR_EL1, ESR_EL1 decoders (declarative fields)
- :mod:`.granule`: 4K/16K/64K geometry
- :mod:`.descriptors`: table/block/page descriptor decoding
- :mod:`.regime`: the register snapshot and the TTBR0/TTBR1 ranges
- :mod:`.walker`: VA -> PA walks with a per-level trace, one read per table
- :mod:`.ranges`: whole-address-space dumps merged into ranges, with problems reported
- :mod:`.runs`: the physically contiguous runs of a virtual window (one dump, else a walk)

JSON and MI faces of the model come from :func:`gdb_tinyos.core.render.to_plain` (addresses as hex strings).
"""

from .granule import GRANULE_4K, GRANULE_16K, GRANULE_64K, Granule
from .model import Attributes, Fault, FaultKind, Mapping, Permissions, Walk, WalkStep
from .ranges import FILTERS, AddressSpace, Problem, ProblemKind, Range, dump, dump_range, make_filter
from .regime import KERNEL_HALF, USER_HALF, TranslationRegime, VaRange, asid_of
from .sysregs import ESR, MAIR, SCTLR, TCR, MemoryAttribute
from .walker import TableReader, Translator, translate, walk

__all__ = [
    "ESR", "FILTERS", "KERNEL_HALF", "USER_HALF", "GRANULE_16K", "GRANULE_4K", "GRANULE_64K", "MAIR", "SCTLR", "TCR",
    "AddressSpace", "Attributes", "Fault", "FaultKind", "Granule", "Mapping", "MemoryAttribute",
    "Permissions", "Problem", "ProblemKind", "Range", "TableReader", "TranslationRegime", "Translator",
    "VaRange", "Walk", "WalkStep", "asid_of", "dump", "dump_range", "make_filter",
    "translate", "walk",
]
