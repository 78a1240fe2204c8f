"""Keep the garbage collector's full passes short once the process has started.

Why: a full (generation 2) collection walks every container object alive. After start-up that is
ccxt's market tables, Textual's widgets and CSS, and the journal replay, and each full pass
pauses the event loop the engine and the console share for tens of milliseconds: under the
bench load (bench/ui.py) those pauses are the console's event-to-screen and key-to-screen p99
(figures: docs/decisions/event-loop-pauses.md). ``gc.freeze()`` moves everything alive at that point into a permanent
generation that collections skip; what the day adds later is still collected as usual.

The first-generation threshold is raised from 700 to 10,000 allocations for the same reason: the
console drops a few hundred rendered rows a second (Textual strips carry reference cycles), and
with the default they are promoted to the oldest generation before they die, so full passes keep
coming (the figures are in the same decision record).

Called once by the product's entry points (the console after its first paint, the headless
runner after the engine started), never by library code: objects frozen are never freed, so a
process that builds many stacks (the test suite) must not freeze each of them.
"""
from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect the start-up garbage, freeze what is left, raise the young-generation threshold;
    returns the objects frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    return gc.get_freeze_count()
