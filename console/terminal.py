"""A slow terminal (an SSH link at a few KB/s) must never stall the engine's loop.

Why this exists: Textual writes each frame through a writer thread fed by a queue of at most 30
writes; when the terminal reads slower than frames are made, the thread blocks on the terminal,
the queue fills, and the next ``driver.write`` blocks the event loop itself, engine included, for
as long as the link takes to drain (measured with bench/ui.py's slow-link run: loop lag of
seconds at 20 KB/s). Two changes keep the loop free:

* the queue is made unbounded, so a write never blocks the loop;
* the console asks ``behind()`` before it draws a batch of feed updates and, while frames are
  still waiting for the terminal, skips that draw: the feed keeps the latest state per key, so
  the next draw shows it (nothing lost, only coalesced) and the queue stays a frame or two long.

It reaches into Textual's driver (``_writer_thread._queue``, Textual 8): when those are missing
(the headless test driver, another Textual) it does nothing and ``behind()`` is always False.
"""
from __future__ import annotations

from queue import Queue
from typing import Any


class WriterWatch:
    """The driver's output queue, made non-blocking and watched for a backlog."""

    def __init__(self, driver: Any) -> None:
        writer = getattr(driver, "_writer_thread", None)
        queue = getattr(writer, "_queue", None)
        self._queue: Queue[Any] | None = queue if isinstance(queue, Queue) else None
        if self._queue is not None:
            with self._queue.mutex:
                self._queue.maxsize = 0  # unbounded: put() never waits for the terminal
        self.dropped = 0  # draws skipped because the terminal was behind

    def behind(self) -> bool:
        """True (and counted) while a frame written earlier still waits for the terminal."""
        if self._queue is None or not self._queue.qsize():
            return False
        self.dropped += 1
        return True
