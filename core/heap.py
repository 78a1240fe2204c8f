"""Keep the garbage collector's full passes short once the process has started.

Why: a full (generation 2) collection walks every container object alive. After start-up that is
ccxt's market tables, Textual's widgets and CSS, and the journal replay: measured on 2026-11-24,
the console under the bench load (bench/ui.py) paused the shared event loop for 76 ms (median)
to 119 ms in each of its 16 full collections in 25 s, which was the whole of its event-to-screen
and key-to-screen p99. ``gc.freeze()`` moves everything alive at that point into a permanent
generation that collections skip; what the day adds later is still collected as usual.

Called once by the product's entry points (the console after its first paint, the headless
runner after the engine started), never by library code: objects frozen are never freed, so a
process that builds many stacks (the test suite) must not freeze each of them.
"""
from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect the start-up garbage, then freeze what is left; returns the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
