"""Today's journal seeds the header and panes on start (de-duplicated against live events), the
history screen pages older rows, and the core readers behind both.

The engine double is used here, on a real journal directory written by the real Journal, only
where the real engine cannot make the situation happen on purpose: the same close, fill and bill
arriving live WHILE the console's read of the day file is under way (``history_gate`` holds the
read), and hundreds of fills over two days for paging. The restart with the real engine is in
tests/slow/console/test_console_sim_keys.py.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from console.app import build_app
from console.screens.history import HistoryScreen
from core.journal import Journal, read_fills
from core.journal.history import HistoryPager, read_day
from core.model import Fill
from tests.helpers.console_helpers import SIZE, T0, FakeEngine, close, fill, funding, screen_text
from tests.helpers.pilot import notifications


async def write_journal(directory: Path, *events: object) -> None:
    journal = Journal(directory)
    await journal.start()
    for event in events:
        if isinstance(event, Fill):
            assert journal.record_fill(event)
        elif hasattr(event, "close_key"):
            assert journal.record_close(event)  # type: ignore[arg-type]
        else:
            assert journal.record_funding(event)  # type: ignore[arg-type]
    await journal.close()


def fills_at(n: int, start, step: timedelta, prefix: str = "h") -> list[Fill]:
    return [replace(fill(i), fill_id=f"{prefix}{i}", ts=start + step * i,
                    price=Decimal(60000) + i) for i in range(n)]


# ================================================================== seeding on start


async def test_today_seeds_header_and_panes_once_despite_live_duplicates(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    on_disk = [fill(1), fill(2), close(1), funding(1)]
    yesterday = replace(fill(9), fill_id="old", ts=T0 - timedelta(days=1))
    await write_journal(journal_dir, *on_disk, yesterday)

    engine = FakeEngine(journal_dir=journal_dir)
    engine.history_gate = asyncio.Event()
    app = build_app(engine, clock=lambda: T0)
    async with app.run_test(size=SIZE) as pilot:
        # while the read is held: the engine publishes rows that are also on disk, and a new fill
        engine.emit(fill(2))
        engine.emit(close(1))
        engine.emit(funding(1))
        engine.emit(fill(3))
        app.flush_now()
        await pilot.pause()
        assert not app.feed.seeded and app.fills.row_count == 2
        engine.history_gate.set()
        await app.workers.wait_for_complete()
        app.flush_now()
        await pilot.pause()
        assert app.feed.seeded
        day = app.feed.day(T0.date())
        # fills f1, f2, f3 once each (0.06 fee each); yesterday's fill not today
        assert day.fees == Decimal("0.18")
        assert day.realized == close(1).net_pnl and day.funding == Decimal("-0.0301")
        assert (app.fills.row_count, app.closes.row_count, app.funding.row_count) == (3, 1, 1)
        # the live rows stay on top, the journal's older one goes below them
        assert [app.fills.row(k).cells[0][0] for k in app.fills.all_keys()] == [
            "12:00:03", "12:00:02", "12:00:01"]
        header = " ".join(screen_text(app).splitlines()[:2])
        assert "Today +12.19" in header and "Fees 0.1800" in header and "Fund -0.0301" in header
        # later live events are counted as usual (seeding is done once)
        engine.emit(fill(4))
        app.flush_now()
        assert app.feed.day(T0.date()).fees == Decimal("0.24")


async def test_seeding_keeps_the_panes_bounded(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    await write_journal(journal_dir, *fills_at(700, T0, timedelta(seconds=1)))
    app = build_app(FakeEngine(journal_dir=journal_dir), clock=lambda: T0)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.fills.row_count == 500  # the window; the header still counts all 700
        assert app.feed.day(T0.date()).fees == Decimal("0.06") * 700
        newest = app.fills.row(next(iter(app.fills.all_keys())))
        assert newest.cells[0][0] == (T0 + timedelta(seconds=699)).strftime("%H:%M:%S")


class NoJournalEngine:
    """An engine-like without today_history / history_pager (an engine with no journal)."""

    def __init__(self) -> None:
        self._inner = FakeEngine()

    def __getattr__(self, name: str) -> object:
        if name in ("today_history", "history_pager"):
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_no_journal_reader_means_no_seeding_and_no_error() -> None:
    app = build_app(NoJournalEngine(), clock=lambda: T0)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.feed.seeded  # nothing to seed from: live events keep counting
        await pilot.press("h")
        assert len(app.screen_stack) == 1
    assert ("no journal to read history from", "warning") in [
        (n.message, n.severity) for n in notifications(app)]


# ================================================================== history screen


async def test_history_screen_pages_older_fills_and_switches_kind(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    yesterday = T0 - timedelta(days=1)
    await write_journal(journal_dir, *fills_at(150, yesterday, timedelta(seconds=10), "y"),
                        *fills_at(300, T0, timedelta(seconds=1), "t"), close(1), close(2))
    app = build_app(FakeEngine(journal_dir=journal_dir), clock=lambda: T0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("h")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        pane = screen.pane()

        def times() -> list[str]:
            return [pane.row(k).cells[0][0] for k in pane.all_keys()]

        assert screen.loaded == 200 and screen.more
        assert times()[0] == (T0 + timedelta(seconds=299)).strftime("%H:%M:%S")
        assert "page 1 (rows 1–200, newest first)" in screen_text(app)
        await pilot.press("n")
        await app.workers.wait_for_complete()
        await pilot.pause()
        # page 2: today's 100 oldest, then yesterday's 100 newest (crossing the day files)
        assert screen.number == 1 and screen.loaded == 200
        assert times()[99] == T0.strftime("%H:%M:%S")
        assert times()[100] == (yesterday + timedelta(seconds=1490)).strftime("%H:%M:%S")
        await pilot.press("n")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.number == 2 and screen.loaded == 50 and not screen.more
        assert "oldest reached" in screen_text(app)
        await pilot.press("n")  # nothing older: stays
        await app.workers.wait_for_complete()
        assert screen.number == 2
        await pilot.press("b")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.number == 1 and times()[0] == (T0 + timedelta(seconds=99)).strftime(
            "%H:%M:%S")
        await pilot.press("tab")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.kind == "closes" and screen.loaded == 2 and screen.number == 0
        assert "Reason" in screen_text(app) and "manual" in screen_text(app)
        await pilot.press("escape")
        assert len(app.screen_stack) == 1


# ================================================================== core readers


async def test_read_day_returns_domain_objects_with_their_journal_keys(tmp_path: Path) -> None:
    written = [fill(1), close(1), funding(1), replace(close(2), fill_ids=())]
    await write_journal(tmp_path, *written)
    day = read_day(tmp_path, T0.date())
    assert day.fills == [fill(1)]
    assert [c.close for c in day.closes] == [close(1), replace(close(2), fill_ids=())]
    assert [c.close_id for c in day.closes] == [close(1).close_key,
                                                replace(close(2), fill_ids=()).close_key]
    assert day.funding == [funding(1)]
    assert (day.realized, day.fees, day.funding_total) == (
        close(1).net_pnl + close(2).net_pnl, Decimal("0.06"), Decimal("-0.0301"))
    assert read_day(tmp_path, T0.date() - timedelta(days=1)).fills == []


async def test_pager_pages_are_stable_while_today_grows(tmp_path: Path) -> None:
    await write_journal(tmp_path, *fills_at(25, T0, timedelta(seconds=1)))
    pager = HistoryPager(tmp_path, "fills", page_size=10)
    first = pager.read_page(0)
    assert [f.fill_id for f in first.items] == [f"h{i}" for i in range(24, 14, -1)] and first.more
    # more fills land in today's file while the trader reads
    await write_journal(tmp_path, *[replace(f, fill_id=f"n{i}") for i, f in
                                    enumerate(fills_at(5, T0 + timedelta(minutes=5),
                                                       timedelta(seconds=1)))])
    second = pager.read_page(1)
    assert [f.fill_id for f in second.items] == [f"h{i}" for i in range(14, 4, -1)]
    third = pager.read_page(2)
    assert [f.fill_id for f in third.items] == [f"h{i}" for i in range(4, -1, -1)]
    assert not third.more
    assert pager.read_page(7).number == 2  # clamped to the oldest page
    assert len(read_fills(tmp_path)) == 30
    assert (await pager.page(0)).items[0].fill_id == "h24"  # page 0 is where it was
    with pytest.raises(ValueError):
        HistoryPager(tmp_path, "orders", 10)  # type: ignore[arg-type]


async def test_pager_on_an_empty_journal(tmp_path: Path) -> None:
    page = HistoryPager(tmp_path / "none", "closes").read_page(0)
    assert page.items == [] and not page.more
