"""console/terminal.py: a terminal that reads slowly never blocks the loop's writes, and the
console skips (coalesces) feed draws while frames still wait for it."""
from __future__ import annotations

from queue import Queue
from types import SimpleNamespace

from console.terminal import WriterWatch


def driver_with_queue(maxsize: int = 30) -> SimpleNamespace:
    """The shape of Textual's LinuxDriver: ``_writer_thread._queue`` (here with no thread)."""
    return SimpleNamespace(_writer_thread=SimpleNamespace(_queue=Queue(maxsize)))


def test_writes_never_block_once_watched() -> None:
    driver = driver_with_queue(30)
    WriterWatch(driver)
    queue = driver._writer_thread._queue
    for n in range(100):  # Textual's queue would block the caller at the 31st
        queue.put_nowait(f"frame {n}")
    assert queue.qsize() == 100


def test_behind_while_frames_wait_and_counts_the_skips() -> None:
    driver = driver_with_queue()
    watch = WriterWatch(driver)
    assert not watch.behind()
    driver._writer_thread._queue.put("frame")
    assert watch.behind() and watch.behind()
    assert watch.dropped == 2
    driver._writer_thread._queue.get()
    assert not watch.behind()
    assert watch.dropped == 2


def test_a_driver_without_a_writer_thread_is_never_behind() -> None:
    watch = WriterWatch(SimpleNamespace())
    assert not watch.behind()
    assert watch.dropped == 0
