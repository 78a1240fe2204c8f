"""Issue 22: what an attached console shows after a resync from a fresh snapshot.

The engine is a real `perpdesk serve` process on the embedded simulator; the console is a
RemoteEngine (what `perpdesk attach` drives the app with) feeding the real FeedBuffer. Its clock
is moved a day on while the engine is away, so the rows made meanwhile are dated "yesterday" for
it: the catch-up must read that day's journal file too, not only today's.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from console.remote import RemoteEngine
from core.events import Notice, NoticeLevel
from core.service.codec import encode
from core.service.server import NOTICE_HISTORY

pytestmark = pytest.mark.timeout(120)


def _history(first_seq: int) -> list[list[object]]:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return [[first_seq + i, encode(Notice(NoticeLevel.WARNING, f"notice {first_seq + i}", at))]
            for i in range(NOTICE_HISTORY)]


@pytest.mark.parametrize(("after", "replayed", "log_line"), [
    (99, NOTICE_HISTORY, False),  # the history starts right after the last notice seen
    (109, NOTICE_HISTORY - 10, False),  # some of them were seen
    (50, NOTICE_HISTORY, True),  # more were raised than the engine keeps: the log has them
])
def test_missed_notices_are_shown_again_and_older_ones_point_to_the_log(
        after: int, replayed: int, log_line: bool) -> None:
    remote = RemoteEngine(Path("/nonexistent"))
    remote.info = {"logs": "/desk/logs"}
    seen: list[Notice] = []
    remote.subscribe(lambda e: seen.append(e) if isinstance(e, Notice) else None)
    remote._notices_missed(_history(100), after, lost_old_run=False)
    shown = [n.text for n in seen if "while this console was away at 03:04:05 UTC" in n.text]
    assert shown == [f"notice {s} (while this console was away at 03:04:05 UTC)"
                     for s in range(100 + NOTICE_HISTORY - replayed, 100 + NOTICE_HISTORY)]
    pointers = [n for n in seen if "/desk/logs/perpdesk_<date>.log" in n.text]
    assert len(pointers) == (1 if log_line else 0)
    if log_line:
        assert pointers[0].level is NoticeLevel.WARNING and f"{replayed} notice(s)" in pointers[0].text


def test_a_console_that_lost_an_engine_run_without_a_goodbye_is_pointed_to_the_log() -> None:
    remote = RemoteEngine(Path("/nonexistent"))
    remote.info = {"logs": "/desk/logs"}
    seen: list[Notice] = []
    remote.subscribe(lambda e: seen.append(e) if isinstance(e, Notice) else None)
    remote._notices_missed([], 0, lost_old_run=True)
    assert len(seen) == 1 and "engine run that stopped meanwhile" in seen[0].text
    assert "/desk/logs/perpdesk_<date>.log" in seen[0].text
