"""The JSON face of every command, as data: one schema per command, a validator, the docs.

A schema is plain data in a small notation (no dependency, readable as documentation):

- ``"int"``, ``"str"``, ``"bool"``, ``"null"``; ``"addr"``: an address, a ``"0x…"`` string
  (the JSON rule: 64-bit values do not survive readers that store numbers as doubles);
  ``"?T"``: T or null;
- ``{"field": schema, ...}``: an object with exactly these fields;
- ``{"*": schema}``: an object whose keys are free (pids as strings, register names);
- ``[schema]``: an array of items; ``("T1", "T2")``: a fixed-length array (a pair);
- ``OneOf(s1, s2)``: either shape.

``check(command, value)`` raises :class:`SchemaError` naming the path of the first
mismatch; ``describe()`` renders every schema for docs/json-schemas.md, which a test keeps
equal to it (``python -m gdb_tinyos.core.schemas > docs/json-schemas.md`` regenerates it).

Example::

    check("cow-check", {"ok": True, "summary": "...", ...})     # None, or SchemaError
    schema_for("cow-status --pid 2 --json")                     # the cow-status schema
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any


class SchemaError(ValueError):
    """A command's JSON does not have its documented shape (the message names where)."""


@dataclass(frozen=True)
class OneOf:
    options: tuple[Any, ...]

    def __init__(self, *options: Any) -> None:
        object.__setattr__(self, "options", options)


_ADDRESS = re.compile(r"^0x[0-9a-f]+$")
_SCALARS = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool), "str": lambda v: isinstance(v, str),
            "bool": lambda v: isinstance(v, bool), "null": lambda v: v is None,
            "addr": lambda v: isinstance(v, str) and bool(_ADDRESS.match(v))}

# -- shared pieces ----------------------------------------------------------------------------

# el1_*: the regime's privileged EL (EL1, or EL2/EL3: see "el"), el0_*: EL0 (when "el0": the
# regime has one: EL1&0, and EL2&0 under VHE).
PERMS = {**{f"el{el}_{what}": "bool" for el in (1, 0) for what in ("read", "write", "exec")}, "el": "int",
         "el0": "bool"}
CACHE = {"policy": "str", "transient": "bool", "read_allocate": "bool", "write_allocate": "bool"}
MEMORY = {"index": "int", "raw": "int", "kind": "str", "name": "str", "inner": OneOf(CACHE, "null"),
          "outer": OneOf(CACHE, "null")}
ATTRS = {"perms": PERMS, "pxn": "bool", "uxn": "bool", "memory": MEMORY, "shareability": "str", "af": "bool",
         "ng": "bool", "contiguous": "bool", "dbm": "bool", "ns": "bool"}
PROCESS = {"slot": "int", "pid": "int", "state": "str", "ttbr0": "addr", "asid": "int", "parent": "?int",
           "name": "str", "running": "bool"}
STATISTICS = {"cow_pages_count": "int", "cow_faults_handled": "int", "pages_duplicated": "int",
              "memory_saved_bytes": "int", "metadata_memory_bytes": "int", "peak_cow_pages": "int"}
TABLE_DESCRIPTOR = {"raw": "addr", "level": "int", "next_table": "addr", "ns_table": "bool", "ap_table": "int",
                    "uxn_table": "bool", "pxn_table": "bool", "kind": "str"}
LEAF_DESCRIPTOR = {"raw": "addr", "level": "int", "kind": "str", "output_address": "addr", "attr_index": "int",
                   "ns": "bool", "ap": "int", "shareability": "str", "af": "bool", "ng": "bool", "dbm": "bool",
                   "contiguous": "bool", "pxn": "bool", "uxn": "bool", "gp": "bool", "software": "int", "size": "int"}
INVALID_DESCRIPTOR = {"raw": "addr", "level": "int", "kind": "str", "reason": "str"}
WALK = {
    "va": "addr", "mmu_enabled": "bool", "ttbr": "?int",
    "steps": [{"level": "int", "table": "addr", "index": "int", "descriptor": "addr", "kind": "str",
               "decoded": OneOf(TABLE_DESCRIPTOR, LEAF_DESCRIPTOR, INVALID_DESCRIPTOR)}],
    "mapping": OneOf({"va": "addr", "pa": "addr", "va_base": "addr", "pa_base": "addr", "size": "int", "level": "int",
                      "kind": "str", "attrs": ATTRS, "asid": "?int"}, "null"),
    "fault": OneOf({"kind": "str", "level": "?int", "message": "str"}, "null"),
    "notes": ["str"],
}
SPACE = {"name": "str", "root_table": "addr", "asid": "?int", "granule": "str", "input_bits": "int",
         "start_level": "int", "va_start": "addr", "va_end": "addr",
         "ranges": [{"va_start": "addr", "va_end": "addr", "pa_start": "addr", "attrs": ATTRS, "leaves": "int",
                     "levels": ["int"]}],
         "problems": ["str"], "tables": ["addr"], "leaves": "int"}
SEARCH = {"needle": "str", "hits": [{"va": "addr", "pa": "addr", "perms": "str", "preview": "str"}],
          "ranges_searched": "int", "bytes_searched": "int", "skipped": ["str"], "truncated": "bool"}
PAGE_STATE = {"pa": "addr", "tracked": "bool", "refs": "?int", "is_cow": "?bool", "original_permissions": "?str",
              "frame_refs": "?int",
              "mappings": [{"pid": "int", "va": "addr", "pa": "?addr", "perms": "str", "writable": "bool",
                            "cow_bit": "?bool", "problem": "?str"}]}
ACTION = {"action": "str", "call": "str", "status": "int", "message": "str", "safe_point": "str",
          "before": PAGE_STATE, "after": PAGE_STATE}
KERNEL_TOTALS = {"free_frames": "?int", "active_pages": "?int", "statistics": OneOf(STATISTICS, "null"),
                 "locks_free": "bool"}
SNAPSHOT = {"label": "str", "initialised": "bool",
            "pages": [{"pa": "addr", "refs": "int", "is_cow": "bool", "original": "str", "sharers": [("addr", "int")]}],
            "ptes": [{"pid": "int", "va": "addr", "pa": "addr", "perms": "str"}],
            "statistics": {**STATISTICS, "active_pages": "int"}, "processes": {"*": "str"}}
SNAPSHOT_KEPT = {"name": "str", "source": "str", "frames": "int", "ptes": "int", "processes": "int", "auto": "bool",
                 "snapshot": OneOf(SNAPSHOT, "null")}
PTE_STATE = OneOf({"pa": "addr", "perms": "str"}, "null")
TRACE = {"active": "bool", "stop": "bool", "hook": "?addr", "fault_entry": "?addr", "events_seen": "int",
         "capacity": "int", "decode_errors": "int", "last_error": "str", "message": "str",
         "events": [{"seq": "int", "kind": "int", "name": "str", "a": "addr", "b": "addr", "pid": "?int",
                     "va": "?addr", "old_frame": "?addr", "new_frame": "?addr", "resolution": "?str",
                     "child": "?int", "status": "?int", "text": "?str", "killed": "bool"}]}
STOP_POINT = {"icount": "int", "pc": "addr", "writer": "?addr", "function": "?str", "frames": ["str"]}
HISTORY = {"subject": "str", "start": STOP_POINT, "watched": ["str"],
           "entries": [{"at": STOP_POINT, "changes": [{"field": "str", "old": "str", "new": "str"}]}],
           "end": "str", "returned_to": "int"}

# -- one schema per command -----------------------------------------------------------------

SCHEMAS: dict[str, Any] = {
    "cow-status": {
        "symbol": "str", "address": "addr", "initialised": "bool", "lock_held": "bool", "capacity": "int",
        "active_pages": "int",
        "figures": {"cow_pages": "int", "cow_faults": "int", "pages_duplicated": "int", "memory_saved_bytes": "int",
                    "peak_cow_pages": "int"},
        "pages": [{"slot": "int", "pa": "addr", "refs": "int", "cow": "bool", "original_permissions": "str",
                   "sharers": [{"va": "addr", "pid": "?int", "pte": "?str", "maps": "?addr", "flags": ["str"]}],
                   "flags": ["str"]}],
        "matched": "int", "omitted": "int", "omitted_refs": "int", "filters": {"*": "str"}, "warnings": ["str"],
        "notes": ["str"],
    },
    "cow-stats": {
        "symbol": "str", "initialised": "bool", "lock_held": "bool", "total_cow_pages": "int", "total_cow_faults": "int",
        "pages_duplicated": "int", "memory_saved_bytes": "int", "metadata_memory_bytes": "int", "peak_cow_pages": "int",
        "memory_efficiency_percent": "int", "tracked_pages": "int", "total_mappings": "int", "capacity": "int",
        "checks": [{"name": "str", "stored": "int", "derived": "int", "how": "str"}],
        "warnings": ["str"], "notes": ["str"],
    },
    "cow-check": {
        "ok": "bool", "summary": "str", "pages": "int", "mappings": "int", "processes": "int",
        "violations": [{"kind": "str", "pa": "?addr", "message": "str", "evidence": ["str"], "count": "int",
                        "last": "?addr"}],
        "warnings": ["str"], "omitted": "int", "skipped": ["str"],
    },
    "cow-create": ACTION, "cow-protect": ACTION, "cow-unprotect": ACTION,
    "cow-test": {"call": "str", "failed": "int", "message": "str", "safe_point": "str", "before": KERNEL_TOTALS,
                 "after": KERNEL_TOTALS},
    "cow-trace": TRACE,
    "cow-snapshot": OneOf(SNAPSHOT_KEPT, [SNAPSHOT_KEPT]),  # --list: every kept snapshot
    "cow-diff": {
        "before": "str", "after": "str",
        "pages": [{"pa": "addr", "change": "str", "refs": ("?int", "?int"), "is_cow": ("?bool", "?bool"),
                   "sharers_added": [("addr", "int")], "sharers_removed": [("addr", "int")]}],
        "ptes": [{"pid": "int", "va": "addr", "before": PTE_STATE, "after": PTE_STATE}],
        "statistics": [{"name": "str", "before": "?int", "after": "?int"}],
        "processes_started": {"*": "str"}, "processes_gone": {"*": "str"},
    },
    "cow-graph": {
        "graph": {"processes": [{"id": "str", "pid": "int", "name": "str"}],
                  "frames": [{"id": "str", "pa": "addr", "refs": "int", "cow": "bool", "violations": ["str"]}],
                  "edges": [{"source": "str", "target": "str", "va": "addr", "perms": "str", "flags": ["str"]}]},
        "written": "?str",  # the file written; null with --json alone
    },
    "cow-history": HISTORY, "cow-blame": HISTORY,
    "pt": {"spaces": [SPACE], "process": OneOf(PROCESS, "null"), "search": OneOf(SEARCH, "null"), "regime": "str",
           "notes": ["str"]},
    "va2pa": WALK,
    "tinyos-info": {
        "version": "str", "kernel_elf": "?str", "kernel_source": "str", "build_id": "?str", "build_id_check": "str",
        "build_id_note": "str", "target": "str", "connection": "?str", "physical_path": "?str",
        "physical_memory": "str",
        "cpu": OneOf({"exception_level": "?int", "mmu": "str", "sctlr": "?addr", "tcr": "?addr", "ttbr0": "?addr",
                      "ttbr1": "?addr", "regime": "str"}, "null"),
        "kernel": OneOf({"capabilities": [{"name": "str", "found": "bool", "symbol": "?str", "address": "?addr",
                                           "adds": "str", "reason": "str"}],
                         "contract_fields": "int", "conventions": ["str"]}, "str"),
    },
    "tinyos-dump": {"core": "str", "sidecar": "str", "registers": {"*": "addr"}, "missing": ["str"]},
    "tinyos-core": {"core": "str", "sidecar": "?str", "ram": [("addr", "addr")], "cpus": "int", "registers": ["str"]},
    "tinyos-break": {"number": "int", "kind": "str", "kind_number": "int", "pid": "?int", "temporary": "bool",
                     "address": "addr"},
}


def schema_for(command_line: str) -> Any:
    """The schema of the command a line runs (``cow-status --json``, ``cow status --json``),
    or None when the line is not one of the plugin's commands."""
    words = shlex.split(command_line)
    if not words:
        return None
    name = f"cow-{words[1]}" if words[0] == "cow" and len(words) > 1 else words[0]
    return SCHEMAS.get(name)


def check(command: str, value: Any) -> None:
    """SchemaError unless ``value`` has the documented shape of ``command``'s JSON."""
    schema = SCHEMAS.get(command)
    if schema is None:
        raise SchemaError(f"{command}: no JSON schema documented")
    validate(value, schema, command)


def validate(value: Any, schema: Any, path: str) -> None:
    """SchemaError naming ``path`` (``cow-status.pages[0].pa``) where ``value`` departs from ``schema``."""
    if isinstance(schema, OneOf):
        errors = []
        for option in schema.options:
            try:
                return validate(value, option, path)
            except SchemaError as exc:
                errors.append(str(exc))
        raise SchemaError(" / ".join(errors))
    if isinstance(schema, str):
        kinds = ("null", schema[1:]) if schema.startswith("?") else (schema,)
        if not any(_SCALARS[kind](value) for kind in kinds):
            raise SchemaError(f"{path}: {value!r} is not {' or '.join(kinds)}")
    elif isinstance(schema, list):
        if not isinstance(value, list):
            raise SchemaError(f"{path}: {value!r} is not an array")
        for i, item in enumerate(value):
            validate(item, schema[0], f"{path}[{i}]")
    elif isinstance(schema, tuple):
        if not isinstance(value, list) or len(value) != len(schema):
            raise SchemaError(f"{path}: {value!r} is not an array of {len(schema)}")
        for i, (item, part) in enumerate(zip(value, schema)):
            validate(item, part, f"{path}[{i}]")
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            raise SchemaError(f"{path}: {value!r} is not an object")
        if "*" in schema:
            for key, item in value.items():
                validate(item, schema["*"], f"{path}.{key}")
            return None
        if set(value) != set(schema):
            missing, extra = sorted(set(schema) - set(value)), sorted(set(value) - set(schema))
            raise SchemaError(f"{path}: fields missing {missing}, undocumented {extra}")
        for key, part in schema.items():
            validate(value[key], part, f"{path}.{key}")
    return None


def render(schema: Any, indent: int = 0) -> str:
    """A schema as indented text, one field per line (the documentation's notation)."""
    pad = "  " * indent
    if isinstance(schema, OneOf):
        return " | ".join(render(option, indent) for option in schema.options)
    if isinstance(schema, str):
        return schema
    if isinstance(schema, tuple):
        return "[" + ", ".join(render(part, indent) for part in schema) + "]"
    if isinstance(schema, list):
        return "[" + render(schema[0], indent) + ", ...]"
    if "*" in schema:
        return "{KEY: " + render(schema["*"], indent) + ", ...}"
    fields = [f"{pad}  {key}: {render(part, indent + 1)}" for key, part in schema.items()]
    return "{\n" + "\n".join(fields) + f"\n{pad}}}"


def describe() -> str:
    """docs/json-schemas.md: every command's schema."""
    head = ["# JSON output of every command", "",
            "Generated from `gdb_tinyos/core/schemas.py` (`python -m gdb_tinyos.core.schemas > docs/json-schemas.md`;",
            "a test keeps them equal). Every scenario's `--json` output is checked against these by the",
            "harness (`GdbSession.cli_json`). Notation: `int`, `str`, `bool`, `null`; `addr` is an address",
            "as a `\"0x…\"` string; `?T` is T or null; `{...}` an object with exactly these fields;",
            "`{KEY: T, ...}` an object with free keys; `[T, ...]` an array; `[T1, T2]` a pair;",
            "`A | B` either shape. The MI twins (`-cow-status`, ...) return the same fields, every leaf a string."]
    body = [f"\n## `{name} --json`\n\n```\n{render(schema)}\n```" for name, schema in SCHEMAS.items()]
    return "\n".join(head + body) + "\n"


if __name__ == "__main__":
    print(describe(), end="")
