"""The testing README's (gdb_tinyos/testing/README.md) ```python blocks run as written.

A block defining `test_*` functions is executed and each function called with the pytest
fixtures its parameters name (the README's fixture table); any other block runs as a
script. The one substitution: `/path/to/your/kernel.elf`, the README's placeholder for
"your kernel", becomes the kernel under test. A block that raises fails here, so the
README cannot drift from the harness."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import gdb_tinyos.testing

README = Path(gdb_tinyos.testing.__file__).with_name("README.md")
YOUR_KERNEL = "/path/to/your/kernel.elf"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def block_name(code: str) -> str:
    """The block's test function, else its first line: readable test ids."""
    found = re.search(r"^def (test_\w+)", code, re.M)
    return found.group(1) if found else re.sub(r"\W+", "_", code.splitlines()[0]).strip("_")[:40]


BLOCKS = python_blocks()


def test_the_readme_has_its_snippets():
    assert len(BLOCKS) >= 6 and sum("def test_" in code for code in BLOCKS) >= 4


@pytest.mark.parametrize("code", BLOCKS, ids=[block_name(code) for code in BLOCKS])
def test_readme_snippet_runs_as_written(code, request, tinyos_kernel):
    namespace: dict = {"__name__": "readme_snippet"}
    source = code.replace(YOUR_KERNEL, str(tinyos_kernel))
    exec(compile(source, f"{README}: python block {block_name(code)}", "exec"), namespace)  # noqa: S102 - our own README
    for name, function in namespace.items():
        if name.startswith("test_") and inspect.isfunction(function):
            function(**{p: request.getfixturevalue(p) for p in inspect.signature(function).parameters})
