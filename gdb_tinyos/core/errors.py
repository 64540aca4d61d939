"""Typed failures. Each carries one sentence a user can act on; only the gdb adapter
turns them into ``gdb.GdbError``."""


class TinyOSError(Exception):
    """Base of every expected failure in gdb_tinyos."""


class MemoryReadError(TinyOSError):
    """Memory could not be read (unmapped, outside RAM, target gone)."""

    def __init__(self, message: str, address: int | None = None, size: int | None = None):
        super().__init__(message)
        self.address = address
        self.size = size


class RegisterError(TinyOSError):
    """A register is unknown to the target or could not be read."""


class SymbolError(TinyOSError):
    """A symbol is missing or ambiguous in the kernel ELF."""


class LayoutError(TinyOSError):
    """DWARF does not describe a type the way the decoder needs."""


class DebugInfoError(TinyOSError):
    """The kernel ELF is missing, unreadable, stripped or has no DWARF."""


class BuildIdMismatch(TinyOSError):
    """The ELF on disk is not the kernel running in the target."""


class CorruptStructure(TinyOSError):
    """Bytes read from the target violate the structure's invariants."""


class TranslationError(TinyOSError):
    """A virtual address cannot be translated (fault, bad table, loop)."""


class NoSuchProcess(TinyOSError):
    """No live process has the pid or ASID asked for (the message lists the live ones)."""


class TargetStateError(TinyOSError):
    """The target is in a state the request cannot run in (running, MMU off, lock held)."""


class InferiorCallError(TinyOSError):
    """Calling a kernel function from the debugger failed (timeout, signal, refused)."""


class ConsoleError(TinyOSError):
    """The session's serial console is unreachable or did not show what was expected."""


class MissingCapability(TinyOSError):
    """The kernel lacks a piece the request needs (no process table, no debugger contract...).

    ``capability`` names the piece, so a command can print a reduced answer instead."""

    def __init__(self, message: str, capability: str = ""):
        super().__init__(message)
        self.capability = capability
