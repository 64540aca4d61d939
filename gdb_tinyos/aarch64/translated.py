"""Virtual reads answered in software, so they do not depend on where the CPU stopped.

A debugger stub reads virtual memory through the CPU's *current* translation: stopped at
EL0, QEMU cannot read the kernel's upper half; at reset the MMU is off and a higher-half
static has no mapping at all. :class:`TranslatedTarget` instead translates every virtual
read itself and reads physical memory:

- addresses of the kernel image (its ELF load segments) go to their load address -- where
  the loader put them and the kernel maps them -- with one physical read, whatever the
  translation state (checked against the kernel's own tables when those are live);
- other addresses are walked through the kernel's tables (the EL1&0 regime: TTBR1 for the
  upper half), one dump of the window when it maps cleanly, else page by page or block by
  block (:mod:`.runs`), or read flat while the MMU is off.

Example::

    kernel = TranslatedTarget(CachedTarget(GdbTarget()), image=info.image())
    kernel.read_virtual(manager_va, size)      # the same bytes at EL0, EL1 or in boot code
    kernel.mmu_on                              # False at reset: say so in the answer
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from ..core.address import PAGE_SIZE
from ..core.errors import RegisterError
from ..core.image import ImageMap
from ..core.target import Target
from .regime import TranslationRegime
from .runs import physical_runs
from .walker import Translator


class TranslatedTarget(Target):
    """``inner``'s physical memory and registers, with virtual reads translated here.

    The translator (and its table cache) lives until :meth:`invalidate`, like the memory
    cache under it: one stop, one set of tables."""

    def __init__(self, inner: Target, image: ImageMap = ImageMap()) -> None:
        super().__init__()
        self.inner = inner
        self.image = image
        self._translator: Translator | None | bool = False  # False: not built yet; None: MMU off
        self._agreed: dict[int, bool] = {}  # by VA page: the tables map it where the ELF loaded it

    # -- the regime the kernel's addresses live in ----------------------------------------
    @property
    def translator(self) -> Translator | None:
        """The EL1&0 translator when that regime's MMU is on, else None (flat)."""
        if self._translator is False:
            try:
                regime = TranslationRegime.from_target(self.inner, el=1)
            except RegisterError:
                # No system registers now (a core without them, a frame being built): the
                # image map and flat reads still work; ask again next time.
                return None
            self._translator = Translator(self.inner, regime) if regime.mmu_enabled else None
        return self._translator

    @property
    def mmu_on(self) -> bool | None:
        """Whether the kernel's translation is on; None when the registers cannot say
        (a core without them, a frame being built)."""
        if self.translator is not None:
            return True
        return False if self._translator is None else None

    # -- Target ------------------------------------------------------------------------
    def read_physical(self, pa: int, size: int) -> bytes:
        self.stats.count(size)
        return self.inner.read_physical(pa, size)

    def read_register(self, name: str) -> int:
        return self.inner.read_register(name)

    def read_virtual(self, va: int, size: int) -> bytes:
        pa = self.image.physical(va, size)
        if pa is not None and self._agrees(va, pa):
            return self.read_physical(pa, size)
        if self.translator is None:
            return self.read_physical(va, size)
        return b"".join(self.read_physical(pa, n) for pa, n in self.physical_runs(va, size))

    def _agrees(self, va: int, pa: int) -> bool:
        """Whether the live tables (if any) map ``va`` where the ELF says it was loaded: a
        kernel that moved itself is then read through its tables instead."""
        if self.translator is None:
            return True
        page = va & -PAGE_SIZE  # one walk per page: a process table's names share a few
        if page not in self._agreed:
            walk = self.translator.walk(page)
            self._agreed[page] = walk.pa is None or walk.pa == pa - (va - page)
        return self._agreed[page]

    def physical_runs(self, va: int, size: int) -> list[tuple[int, int]]:
        """``[va, va + size)`` as physically contiguous (pa, length) runs through the
        kernel's tables (:func:`.runs.physical_runs`)."""
        return physical_runs(self.translator, va, size)

    def invalidate(self) -> None:
        self._translator = False
        self._agreed.clear()
        self.inner.invalidate()

    def batch(self) -> AbstractContextManager[None]:
        return self.inner.batch()
