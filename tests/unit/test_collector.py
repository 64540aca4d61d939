"""core/collector.py: the cycle collector is off inside a command and back on after it,
whatever the command did (nested pauses, an exception), and stays off when it was off."""

from __future__ import annotations

import gc

import pytest

from gdb_tinyos.core.collector import collector_paused


def test_paused_inside_resumed_after_even_on_error_and_nested():
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        with collector_paused():
            with collector_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the inner pause does not resume the outer one
            1 / 0
    assert gc.isenabled()


def test_a_collector_off_before_stays_off():
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
