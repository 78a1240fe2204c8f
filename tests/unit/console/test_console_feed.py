"""The feed buffer, the Line-API panes' partial refresh and bounded windows, and the pure helpers
(size parsing, order validation, number formatting)."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from textual.geometry import Region

from console.app import build_app
from console.feed import FeedBuffer
from console.screens.order import build_order
from console.screens.partial import SizeError, close_contracts
from console.widgets.fmt import Precision, fmt_num, places_of
from console.widgets.positions import PositionsPane, upnl_pct
from core.events import MarkPrice, PositionGone, RiskStatus, TradingState
from core.model import OrderSide, PositionSide
from tests.helpers.console_helpers import (
    BTC,
    ETH,
    INSTRUMENTS,
    T0,
    FakeEngine,
    account,
    close,
    fill,
    funding,
    latency,
    painted,
    screen_text,
    snapshot,
)


def test_feed_last_write_wins_and_bounded_windows() -> None:
    feed = FeedBuffer(window=3)
    for mark in ("60001", "60002", "60003"):
        feed.push(snapshot(mark=mark))
    feed.push(MarkPrice(BTC, Decimal("1"), T0))
    for n in range(10):
        feed.push(fill(n))
    feed.push(close(1))
    feed.push(funding(1))
    batch = feed.drain()
    assert batch.states[("pos", (BTC, "net"))].mark_price == Decimal("60003")
    assert [f.fill_id for f in batch.fills] == ["f7", "f8", "f9"]
    assert len(batch.closes) == 1 and len(batch.funding) == 1
    assert not feed.pending() and not feed.drain()
    day = feed.day(T0.date())
    assert day.fees == Decimal("0.60")  # all ten fills, not only the three kept for display
    assert day.realized == close(1).net_pnl and day.funding == Decimal("-0.0301")
    assert feed.day(T0.date() + timedelta(days=1)).fees == 0


async def test_mark_update_refreshes_only_its_line() -> None:
    engine = FakeEngine([snapshot(BTC), snapshot(ETH, PositionSide.SHORT, "30", "3000", "2990.55")])
    app = build_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        pane = app.positions
        regions: list[Region] = []
        original = pane._set_dirty  # what refresh() and console/textual_private/repaint.py mark

        def spy(*regions_: Region):
            regions.extend(regions_ or [Region(0, 0, 0, 999)])
            return original(*regions_)

        pane._set_dirty = spy  # type: ignore[method-assign]
        eth_strip = pane._cache.get(((ETH, "net"), 0))
        engine.emit(snapshot(ETH, PositionSide.SHORT, "30", "3000", "2980.00"))
        app.flush_now()
        # the ETH row only, and on it only the characters that moved: from the mark's "9" of
        # "2,990.55" -> "2,980.00" to the last digit of uPnL% (its "%" stays)
        titles, widths = pane.visible_titles, pane._col_widths
        starts = [sum(widths[:i]) + i for i in range(len(widths))]
        mark, pct = titles.index("Mark"), titles.index("uPnL%")
        x0, x1 = starts[mark] + widths[mark] - 5, starts[pct] + widths[pct] - 1
        assert regions == [Region(x0, 2, x1 - x0, 1)]
        assert ((BTC, "net"), 1) in pane._cache or ((BTC, "net"), 2) in pane._cache
        assert eth_strip is not None and ((ETH, "net"), 0) not in pane._cache
        await pilot.pause()
        assert "+60.00" in screen_text(app)  # (3000 - 2980) x 3 ETH


async def test_flush_waits_while_a_modal_is_open_and_gone_rows_leave() -> None:
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("c")
        engine.emit(snapshot(ETH, PositionSide.SHORT, "30", "3000", "2990.55"))
        app.flush_now()
        assert ETH not in {k[0] for k in app.positions.snapshots}
        await pilot.press("escape")
        app.flush_now()
        assert app.positions.row_count == 2
        engine.emit(PositionGone(BTC, "net", "another life"))  # not the shown life: stays
        app.flush_now()
        assert app.positions.row_count == 2
        engine.emit(PositionGone(BTC, "net", snapshot(BTC).position_id))
        app.flush_now()
        assert app.positions.row_count == 1 and app.positions.selected.symbol == ETH


async def test_windows_stay_bounded_and_bursts_stay_cheap() -> None:
    engine = FakeEngine([snapshot(BTC), snapshot(ETH, PositionSide.SHORT, "30", "3000", "2990.55")])
    app = build_app(engine, clock=lambda: T0)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        started = time.perf_counter()
        for n in range(20_000):
            engine.emit(snapshot(BTC, mark=str(60000 + n % 100)))
            if n % 10 == 0:
                engine.emit(fill(n))
        engine.emit(close(1))
        app.flush_now()
        shown = (app.fills.row_count > 0) + (app.closes.row_count > 0)
        assert shown == 1  # one whole pane redrawn per flush: the other follows with the next
        app.flush_now()
        assert app.closes.row_count == 1
        elapsed = time.perf_counter() - started
        assert app.fills.row_count == 500  # newest window only
        assert app.fills.row(next(iter(app.fills.all_keys()))).cells[0][0] == "12:00:10"
        assert elapsed < 2.0, elapsed  # measured ~0.1 s; generous for slow CI
        await pilot.pause()
        assert "Fees 120.0000" in screen_text(app)  # 2000 fills x 0.06, every one counted


@pytest.mark.parametrize(("text", "contracts"), [
    ("50%", "5.0"), ("25 %", "2.5"), ("33%", "3.3"), ("100%", "10"), ("3", "3"),
    ("3.5 ct", "3.5"), ("0.035 BTC", "3.5"), ("0.1 coins", "10"),
])
def test_close_size_parsing(text: str, contracts: str) -> None:
    assert close_contracts(text, snapshot(BTC), INSTRUMENTS[BTC]) == Decimal(contracts)


@pytest.mark.parametrize(("text", "error"), [
    ("0.05", "lot size"), ("11", "more than the position"), ("0.0005 btc", "lot size"),
    ("0%", "percentage"), ("150%", "percentage"), ("abc", "type a size"), ("3 eth", "unknown unit"),
    ("0.4%", "less than one lot"),
])
def test_close_size_errors(text: str, error: str) -> None:
    with pytest.raises(SizeError, match=error):
        close_contracts(text, snapshot(BTC), INSTRUMENTS[BTC])


def test_order_validation() -> None:
    eth = INSTRUMENTS[ETH]
    order = build_order(eth, "buy", "market", "3", "", True)
    assert (order.symbol, order.side, order.contracts, order.price, order.reduce_only) == (
        ETH, OrderSide.BUY, Decimal("3"), None, True)
    with pytest.raises(SizeError, match="multiple of 1"):
        build_order(eth, "buy", "market", "2.5", "", False)
    with pytest.raises(SizeError, match="price"):
        build_order(eth, "sell", "limit", "2", "", False)
    with pytest.raises(SizeError, match="tick"):
        build_order(eth, "sell", "limit", "2", "3000.005", False)


def test_formatting_is_exact_and_at_instrument_precision() -> None:
    p = Precision.of(INSTRUMENTS[BTC])
    assert (p.px(Decimal("60000.05")), p.ct(Decimal("3")), p.coin(Decimal("0.03"))) == (
        "60,000.0", "3.0", "0.030")
    assert places_of(Decimal("0.0001")) == 4 and places_of(Decimal("1")) == 0
    assert fmt_num(Decimal("-0.001"), 2, sign=True) == "0.00"
    assert fmt_num(Decimal("1234567.891"), 2, sign=True) == "+1,234,567.89"
    assert fmt_num(Decimal("0.1") + Decimal("0.2"), 1) == "0.3"
    assert Precision.of(None).px(Decimal("1.50")) == "1.5"
    # +50 on 6,000 notional at 10x: 8.33% of the 600 margin; of the notional with no leverage
    assert fmt_num(upnl_pct(snapshot(BTC)), 2) == "8.33"
    assert fmt_num(upnl_pct(replace(snapshot(BTC), leverage=Decimal(0))), 4) == "0.8333"


def test_pnl_chart_buckets_bounds_and_scales() -> None:
    from console.widgets.pnlchart import BLOCKS, PnlChart

    chart = PnlChart(step_s=10, points=5)
    chart.sample(Decimal("1"), 100.0)
    chart.sample(Decimal("3"), 105.0)  # same 10 s bucket: last write wins
    assert list(chart.points) == [Decimal("3")]
    for n, value in enumerate(("-2", "0", "5", "7", "9")):
        chart.sample(Decimal(value), 110.0 + 10 * n)
    assert list(chart.points) == [Decimal(v) for v in ("-2", "0", "5", "7", "9")]  # bounded
    chart.sample(Decimal("4"), 50.0)  # the clock stepped back: the current bucket is updated
    assert list(chart.points)[-1] == Decimal("4") and len(chart.points) == 5
    levels = chart.levels(3)  # the newest 3 points 5, 7, 4: (5-4) x 7 / 3 floors to level 2
    assert levels == [(BLOCKS[2], "up"), (BLOCKS[-1], "up"), (BLOCKS[0], "up")]
    assert [tone for _, tone in chart.levels(5)][:2] == ["down", "flat"]
    chart.reset()
    assert chart.levels(10) == []


async def test_pnl_chart_is_fed_by_the_flush_with_todays_net_pnl() -> None:
    engine = FakeEngine([snapshot(BTC)])  # uPnL +50.00
    app = build_app(engine, clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert list(app.pnl_chart.points) == [Decimal("50.00")]
        engine.emit(close(1))  # net +12.19
        app.flush_now()
        assert list(app.pnl_chart.points) == [Decimal("62.19")]  # same bucket (fixed clock)
        await pilot.pause()
        assert "PnL " in screen_text(app).splitlines()[0]  # fits at 80 columns, first line


async def test_new_fills_are_grouped_under_a_stream_and_none_is_lost() -> None:
    """A fill after a quiet spell shows at the next flush; fills right behind it wait for the
    grouping interval (each one would repaint the whole pane), then all of them show."""
    from console.app import APPEND_INTERVAL_S

    engine = FakeEngine([snapshot(BTC)])
    now = [1000.0]  # a fake monotonic clock: the test moves time, it never sleeps
    app = build_app(engine, monotonic=lambda: now[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        engine.emit(fill(1))
        app.flush_now()
        assert app.fills.row_count == 1  # quiet pane: at once
        for n in (2, 3, 4):
            engine.emit(fill(n))
            app.flush_now()
        assert app.fills.row_count == 1  # grouped
        assert app.feed.day(T0.date()).fees == Decimal("0.24")  # the totals counted all four
        now[0] += APPEND_INTERVAL_S / 2
        app.flush_now()
        assert app.fills.row_count == 1  # still within the interval
        now[0] += APPEND_INTERVAL_S / 2
        app.flush_now()
        assert app.fills.row_count == 4
        await pilot.pause()
        text = screen_text(app)
        assert text.index("12:00:04") < text.index("12:00:03") < text.index("12:00:01")  # newest on top


# ==================================================================== bad numbers (issue 10 item 5)

BAD_NUMBERS = [("９", "digits 0-9"), ("1_0", "not a number"), ("Infinity", "not a number"),
               ("NaN", "not a number"), ("1e999", "too large"), ("-1", "greater than 0"),
               ("0", "greater than 0"), ("0e5", "greater than 0"), ("", "type a number"),
               ("1e-30", "too many decimals"), (" 1 2", "not a number")]


@pytest.mark.parametrize(("text", "error"), BAD_NUMBERS)
def test_order_entry_refuses_what_is_not_a_plain_positive_number(text: str, error: str) -> None:
    with pytest.raises(SizeError, match=error):
        build_order(INSTRUMENTS[BTC], "buy", "market", text, "", False)
    with pytest.raises(SizeError, match=error):
        build_order(INSTRUMENTS[BTC], "buy", "limit", "1", text, False)


@pytest.mark.parametrize("text", ["9" * 3000, "0." + "1" * 3000, "-" + "9" * 3000, "x" * 3000,
                                  "1" * 3000 + " " + "z" * 3000],
                         ids=["digits", "decimals", "negative", "letters", "unit"])
def test_a_huge_typed_number_is_quoted_by_a_short_prefix(text: str) -> None:
    messages = []
    for attempt in (lambda: build_order(INSTRUMENTS[BTC], "buy", "market", text, "", False),
                    lambda: build_order(INSTRUMENTS[BTC], "buy", "limit", "1", text, False),
                    lambda: close_contracts(text, snapshot(BTC), INSTRUMENTS[BTC])):
        with pytest.raises(SizeError) as err:
            attempt()
        messages.append(str(err.value))
    for message in messages:
        assert len(message) < 120, message
    assert any(text[:20] + "…" in m for m in messages), messages


@pytest.mark.parametrize("text", ["９", "1_0", "Infinity", "NaN", "1e999", "-1", "1e999%",
                                  "1e999 btc", "..5"])
def test_partial_close_refuses_the_same_numbers(text: str) -> None:
    with pytest.raises(SizeError):
        close_contracts(text, snapshot(BTC), INSTRUMENTS[BTC])


def test_one_parser_accepts_plain_and_small_exponent_numbers() -> None:
    assert build_order(INSTRUMENTS[BTC], "buy", "market", " 2.5 ", "", False).contracts == Decimal("2.5")
    assert build_order(INSTRUMENTS[BTC], "buy", "market", "1e1", "", False).contracts == 10
    assert close_contracts("5e-1", snapshot(BTC), INSTRUMENTS[BTC]) == Decimal("0.5")


@pytest.mark.parametrize("value", ["1e999", "Infinity", "-Infinity", "NaN", "1e-999999"])
def test_money_formatting_never_raises(value: str) -> None:
    shown = fmt_num(Decimal(value), 2, sign=True)
    assert shown in ("—", "0.00")
    assert fmt_num(Decimal("1e30"), 2) == "1,000,000,000,000,000,000,000,000,000,000.00"


async def test_order_entry_with_an_overflowing_size_is_refused_in_the_dialog() -> None:
    from console.screens.order import OrderEntryScreen

    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o", *"1e999", "enter")
        assert isinstance(app.screen, OrderEntryScreen)
        assert "too large" in screen_text(app)
        await pilot.press(*["backspace"] * 5, "９", "enter")
        assert isinstance(app.screen, OrderEntryScreen)
        assert "digits 0-9" in screen_text(app)
        assert app.is_running
    assert engine.commands == []


async def test_blanks_join_the_run_before_them_so_a_row_sends_fewer_styles() -> None:
    """A losing ETH short: uPnL and uPnL% share the "down" colour, and the gap between them
    must not split them into two segments (each costs a full SGR sequence on the wire)."""
    engine = FakeEngine([snapshot(ETH, PositionSide.SHORT, "30", "3000", "3010.00")])
    app = build_app(engine)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        pane = app.positions
        strip = pane.render_line(1)
        texts = [seg.text for seg in strip]
        down = [seg for seg in strip if "-30.00" in seg.text]
        assert len(down) == 1 and "%" in down[0].text  # uPnL and uPnL% in one run
        assert "".join(texts).split() == pane_row_words(pane)
        styles = [seg.style for seg in strip]
        assert all(a != b for a, b in zip(styles, styles[1:], strict=False))  # no two alike in a row
        _, _, _, tones = pane._line_styles()
        assert down[0].style.color == tones["down"].color  # the loss keeps its colour


def pane_row_words(pane: PositionsPane) -> list[str]:
    row = pane.row(pane._order[0])
    assert row is not None
    return " ".join(text for text, _ in row.cells if text).split()


async def test_a_dialog_opening_and_closing_does_not_rebuild_the_footer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual's Footer recomposed (~15 widgets mounted and a layout) on each bindings update;
    a `c` and `n` sent six. The keys shown are the same before and after: no rebuild."""
    from textual.widgets import Footer

    from console.widgets.footer import KeysFooter

    calls: list[int] = []
    rebuild = Footer.bindings_changed  # Textual's: recompose

    def counting(self: Footer, screen: object) -> None:
        calls.append(1)
        rebuild(self, screen)  # type: ignore[arg-type]

    monkeypatch.setattr(Footer, "bindings_changed", counting)
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        footer = app.query_one(KeysFooter)
        calls.clear()
        before = app.query_one(KeysFooter).keys_shown(app.screen)
        for _ in range(3):
            await pilot.press("c")
            await pilot.pause()
            assert "Close position?" in screen_text(app)
            await pilot.press("n")
            await pilot.pause()
        assert calls == []
        assert footer.keys_shown(app.screen) == before
        assert "Close all" in screen_text(app)  # still drawn
        footer._shown = None  # keys that differ from the last ones drawn are rebuilt
        app.screen.bindings_updated_signal.publish(app.screen)  # as Textual sends it
        await pilot.pause()
        await pilot.pause()
        assert calls == [1] and "Close all" in screen_text(app)


async def test_the_border_is_the_box_s_so_a_moved_mark_does_not_resend_it() -> None:
    """Textual writes a changed line from the owning widget's left edge: the pane has no border
    of its own (its box draws it), and the box's border follows the focus as the pane's did."""
    from console.widgets.panebox import PaneBox

    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        box = app.query_one("#positions-box", PaneBox)
        pane = app.positions
        assert box.pane is pane and box.border_title == "Positions"
        assert pane.region.x == box.region.x + 1  # the row starts after the box's border
        assert all(edge[0] in ("", "none") for edge in pane.styles.border)
        focused = box.styles.border_left[1]
        other = app.query_one("#closes-box", PaneBox)
        assert other.styles.border_left[1] != focused  # only the focused pane's box is lit
        await pilot.press("tab")
        await pilot.pause()
        assert other.styles.border_left[1] == focused and box.styles.border_left[1] != focused
        assert "Positions" in screen_text(app) and "Closes" in screen_text(app)


async def test_a_flush_that_shows_nothing_new_refreshes_neither_header_nor_risk_line() -> None:
    """The account snapshot carries a new timestamp on every push, and the latency and the risk
    figures more digits than are shown: the header and the risk line were refreshed (a repaint of
    their lines and the compositor's work) on each flush for text that did not change. A change
    that shows refreshes only the lines it is on, never the whole widget or a layout."""
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(160, 40)) as pilot:
        engine.emit(account())
        engine.emit(latency(12.2))
        risk = RiskStatus(TradingState.RUNNING, "scalper", True, Decimal("-12.3"),
                          Decimal("100"), Decimal("1234.5"), Decimal("5000"), "")
        engine.emit(risk)
        app.flush_now()
        await painted(app, pilot, "Strategy scalper")
        await pilot.pause(0.3)  # past the header's tick interval: nothing holds a change back
        calls: dict[str, list[tuple[tuple[Region, ...], dict[str, object]]]] = {
            "header": [], "risk": []}

        def spy(name: str, widget: Any) -> None:
            original, dirty = widget.refresh, widget._set_dirty  # console/textual_private/repaint.py

            def refresh(*regions: Region, **kwargs: object) -> Any:
                if kwargs.get("layout"):
                    calls[name].append((regions, kwargs))
                return original(*regions, **kwargs)

            def set_dirty(*regions: Region) -> Any:
                calls[name].append((regions, {}))
                return dirty(*regions)

            widget.refresh = refresh
            widget._set_dirty = set_dirty

        spy("header", app.header)
        spy("risk", app.risk_line)
        for n in range(1, 4):
            engine.emit(replace(account(), ts=T0 + timedelta(seconds=n)))
            engine.emit(latency(12.2 + n / 10))  # shown as "12ms" each time
            engine.emit(replace(risk, today_net=Decimal("-12.3") - Decimal(n) / 1000,
                                exposure=Decimal("1234.5") + Decimal(n) / 1000))
            app.flush_now()
            await pilot.pause()
        assert calls == {"header": [], "risk": []}
        engine.emit(replace(account(), equity=Decimal("10300")))
        engine.emit(replace(risk, exposure=Decimal("1300")))
        app.flush_now()
        for name in ("header", "risk"):
            assert calls[name], name
            for regions, kwargs in calls[name]:
                assert regions and all(r.height == 1 for r in regions), (name, regions)
                assert not kwargs.get("layout"), name
        await pilot.pause()
        text = screen_text(app)
        assert "10,300.00" in text and "Expo 1,300.00" in text


async def test_the_first_dialog_finds_its_widgets_styled_already() -> None:
    """The first widget of a kind brings its default CSS into the stylesheet, which restyles the
    whole screen: on the session's first `c` that was about half of the time to the
    confirmation. The app styles the dialogs' kinds of widget and prepares the confirmation
    itself (the modal screen's CSS with it) at idle after the first paint, so the first `c` adds
    no CSS at all (console/screens/warm.py)."""
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await painted(app, pilot, "BTC")
        for _ in range(100):  # at idle after the first paint (later on a loaded machine)
            names = {name for _, name in app.stylesheet.source}
            if {"Button.DEFAULT_CSS", "ModalScreen.DEFAULT_CSS"} <= names:
                break
            await pilot.pause(0.02)
        before = set(app.stylesheet.source)
        await pilot.press("c")
        await painted(app, pilot, "Close position?")
        added = {name for path, name in set(app.stylesheet.source) - before}
        assert added == set(), added
        await pilot.press("n")
        await pilot.pause()
        assert "Close position?" not in screen_text(app) and "BTC" in screen_text(app)


async def test_an_idle_console_runs_no_drawing_timer_and_a_push_wakes_it() -> None:
    """Nothing arriving: the drawing timer sleeps (it ran refresh_hz times a second, finding
    nothing); the next push wakes it and is on screen within a frame."""
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        before = app.flushes
        await pilot.pause(0.5)
        assert app.flushes - before <= 1  # 15 at 30 Hz before
        engine.emit(snapshot(BTC, mark="61234.5"))
        await pilot.pause(0.1)
        assert app.flushes > before
        assert "61,234.5" in screen_text(app)
        await pilot.pause(0.2)
        before = app.flushes
        await pilot.pause(0.4)
        assert app.flushes - before <= 1  # asleep again


async def test_a_mark_push_formats_only_the_cells_it_moves() -> None:
    """Mark, uPnL and uPnL% are formatted again; the seven other cells are the ones already
    made; the row is the one a full format gives; any other field changing formats it all."""
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        pane = app.positions
        first = pane.row((BTC, "net"))
        engine.emit(snapshot(BTC, mark="60512.3"))
        app.flush_now()
        moved = pane.row((BTC, "net"))
        assert first is not None and moved is not None and moved != first
        assert all(moved.cells[i] is first.cells[i] for i in (0, 1, 2, 3, 4, 8, 9))
        fresh = build_app(FakeEngine([snapshot(BTC, mark="60512.3")]))
        async with fresh.run_test(size=(160, 50)) as other:
            await other.pause()
            assert fresh.positions.row((BTC, "net")) == moved
        engine.emit(snapshot(BTC, contracts="12", mark="60512.3", funding="-0.5"))
        app.flush_now()
        grown = pane.row((BTC, "net"))
        assert grown is not None and grown.cells[2][0] == "12.0" and grown.cells[9][0] == "-0.5000"
        await pilot.pause()
        assert "+61.48" in screen_text(app)  # (60512.3 - 60000) x 12 contracts x 0.01 BTC


async def test_a_mark_of_an_instrument_without_a_row_draws_nothing() -> None:
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(160, 50)) as pilot:
        def dirty() -> list[Any]:
            return [w for w in app.screen.walk_children() if getattr(w, "_repaint_required", False)
                    ] + list(app.screen._dirty_widgets)

        for _ in range(50):  # the first frames and the header's tick interval are drawn
            await pilot.pause(0.05)
            if not dirty() and not app.header.deferred:
                break
        assert dirty() == []
        engine.emit(MarkPrice(ETH, Decimal("3100.5"), T0))
        app.flush_now()
        assert dirty() == []


async def test_a_held_back_header_figure_is_drawn_with_no_push_after_it() -> None:
    """uPnL moving twice within the header's tick interval: the second value is held back, and
    the drawing timer, which sleeps once the feed is empty, still draws it when the interval
    has passed, with nothing else arriving."""
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause(0.4)
        engine.emit(snapshot(BTC, mark="60600"))  # uPnL +60.00
        await pilot.pause(0.05)
        engine.emit(snapshot(BTC, mark="60700"))  # uPnL +70.00, within the interval: held back
        await pilot.pause(0.05)
        assert app.header.deferred
        await pilot.pause(0.5)
        assert not app.header.deferred
        assert "uPnL +70.00" in screen_text(app)
