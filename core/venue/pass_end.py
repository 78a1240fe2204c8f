"""The end of an event-loop pass: one scheduled callback runs every part's after-the-burst work.

Why: a burst of pushes read from the socket in one go is handled in one pass; the parts that
coalesce it (the push router's newest-per-key emit, the engine book's revaluation) each want to
run once after it. Each scheduling its own callback cost the loop one handle per part per push
(a Handle built, queued and run: about a tenth of a mark push's CPU). Here they share one.

The rules the parts rely on:
- order: the callbacks run in the order they were asked for, and one asked for while the pass
  end runs (the book's revaluation of a mark the router's emit just handed over) runs in the
  same pass end, after the others; so a fill queued behind a burst of marks, which the engine
  takes from its queue in a later handle, still sees the burst's last mark;
- fairness: a pass end is one handle of the loop like any other; what arrives while it runs,
  past what was asked for, waits for the next pass (the console shares the loop);
- isolation: one callback that raises is logged and the others still run.
Coalescing stays each part's own (its "already asked" flag), so asking twice runs twice.
"""
from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

from loguru import logger


class PassEnd:
    """One loop's end-of-pass callbacks, run in one handle scheduled by the first of them."""

    __slots__ = ("__weakref__", "_loop", "_queue")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: list[Callable[[], None]] = []

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` at the end of this pass (after the handles already scheduled)."""
        queue = self._queue
        queue.append(fn)
        if len(queue) == 1:
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        queue = self._queue
        i = 0
        try:
            while i < len(queue):  # a callback may ask for another: it runs here, after the rest
                fn = queue[i]
                i += 1
                try:
                    fn()
                except Exception:  # noqa: BLE001 - one part's failure must not skip the others
                    logger.exception(f"end-of-pass work {fn!r} failed")
        finally:
            self._queue = []


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PassEnd] = weakref.WeakKeyDictionary()
_last: PassEnd | None = None


def pass_end() -> PassEnd:
    """The running loop's PassEnd (one per loop, made on first use)."""
    global _last  # noqa: PLW0603 - a one-entry cache of the look-up below, on the hot path
    loop = asyncio.get_running_loop()
    last = _last
    if last is not None and last._loop is loop:  # noqa: SLF001 - the class's own cache
        return last
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = PassEnd(loop)
    _last = found
    return found


def at_pass_end(fn: Callable[[], None]) -> None:
    """Run ``fn`` once at the end of the running loop's current pass, in the order asked."""
    pass_end().call(fn)
