"""Every trading key against the real, simulator-backed engine (issue 5 "Done when").

Keys go in through Textual's pilot; what is checked comes out of the EXCHANGE (GET /sim/v1/state
and an outside ccxt client's fetch_positions / fetch_open_orders), the JOURNAL (trades and orders
CSV read back) and the trader's NOTIFICATIONS. The simulator runs with speed 0, zero spread and
zero slippage (tests/helpers/engine_helpers.py): prices move only through /sim/v1/price, so pilot.press
(which waits for the app to go idle) is never racing a live feed, and every number below can be
worked out by hand: BTC-USDT-SWAP is 0.01 BTC a contract, lot 0.01 contract, tick 0.1.

The close, reconcile, restart and flipped-position tests run on both faces of the simulator (OKX
v5, and Bybit v5 through the native bybit venue, where sizes are coins and said once).
"""
from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from console.app import PerpdeskApp, build_app
from console.screens.confirm import ConfirmScreen
from console.screens.history import HistoryScreen
from console.screens.partial import PartialCloseScreen
from console.screens.reconcile import ReconcileScreen
from core.events import ClosePosition
from tests.helpers.console_helpers import SIZE, screen_text
from tests.helpers.engine_helpers import (
    BTC,
    BTC_ID,
    ETH,
    VENUES,
    Rig,
    assert_rows_consistent,
    control,
    exchange_position,
    set_price,
    wait_for,
    wait_position,
)
from tests.helpers.pilot import rows_shown, settle

ETH_ID = "ETH-USDT-SWAP"
BOTH = pytest.mark.parametrize("venue", VENUES)


async def ccxt_open(rig: Rig) -> dict[str, D]:
    """Open positions as an outside ccxt client sees them: symbol -> contracts."""
    return {p["symbol"]: D(str(p["contracts"])) for p in await rig.ext.fetch_positions()
            if p.get("contracts")}


def build(engine: Any) -> PerpdeskApp:
    """The real app, with every notification it shows recorded (toasts expire after seconds,
    so ``app._notifications`` alone would forget the early ones in a long test)."""
    app = build_app(engine)
    shown: list[tuple[str, str]] = []
    original = app.notify

    def spy(message: str, *args: Any, **kwargs: Any) -> None:
        shown.append((message, str(kwargs.get("severity", "information"))))
        original(message, *args, **kwargs)

    app.notify = spy  # type: ignore[method-assign]
    app.shown_notes = shown  # type: ignore[attr-defined]
    return app


def notes(app: PerpdeskApp) -> list[tuple[str, str]]:
    return list(app.shown_notes)  # type: ignore[attr-defined]


async def console_rows(rig: Rig, n: int) -> list[dict[str, Any]]:
    """The journal's manual close rows once ``n`` of them are there."""
    async def have() -> bool:
        assert rig.journal is not None
        await rig.journal.flush()
        return len([t for t in rig.trades() if t["reason"] == "manual"]) >= n
    await wait_for(have, what=f"{n} manual close rows")
    rows = [t for t in rig.trades() if t["reason"] == "manual"]
    assert len(rows) == n, rows
    assert_rows_consistent(rows)
    return rows


async def mark_known(rig: Rig, engine: Any, px: str, inst: str = BTC_ID, symbol: str = BTC) -> None:
    await set_price(rig.srv, px, inst)
    await wait_for(lambda: engine.mark(symbol) == D(px), what=f"mark {px} at the engine")


# ==================================================================== c


@BOTH
async def test_c_then_y_closes_on_the_exchange_journal_and_header(rig: Rig) -> None:
    engine = await rig.start_engine()
    await rig.outside("buy", 40)  # entry 60000
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await rows_shown(app, 1)
        await mark_known(rig, engine, "60100")
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        body = screen_text(app)
        assert ("BTC/USDT long  0.4000 BTC" if rig.bybit else "BTC/USDT long  40.00 ct (0.4000 BTC)") in body
        assert "estimated PnL +40.00" in body  # (60100 - 60000) x 0.4 BTC
        await pilot.press("y")
        await settle(app, pilot)
        await wait_position(rig, "0")
        assert await ccxt_open(rig) == {}
        await rows_shown(app, 0, "0 position rows (row gone)")
        (row,) = await console_rows(rig, 1)
        assert (row["symbol"], row["size_before"], row["size_closed"], row["size_after"]) == (
            BTC, D("0.4"), D("0.4"), D("0"))
        assert row["gross_pnl"] == D("40") and row["exit_price"] == D("60100")
        # both taker fees on this life: 0.4 x 60000 x 0.0005 + 0.4 x 60100 x 0.0005
        assert row["fee"] == D("24.02") and row["net_pnl"] == D("15.98")
        closing = [f for f in rig.fills() if f["origin"] == "console"]
        assert [(f["side"], f["contracts"]) for f in closing] == [("sell", rig.ct(40))]
        said = "0.4 BTC" if rig.bybit else "40 contracts (0.4 BTC)"
        assert (f"closing all of {said} of BTC/USDT:USDT net", "information") in notes(app)

        async def header_shows_realized() -> bool:
            app.flush_now()
            await pilot.pause()
            return "Today +15.98" in screen_text(app)
        await wait_for(header_shows_realized, what="today's net realized in the header")

        # the history screen reads the same journal back (fills, then closes with Tab)
        await pilot.press("h")
        await settle(app, pilot)
        assert isinstance(app.screen, HistoryScreen)
        assert app.screen.loaded == len(rig.fills()) == 2
        await pilot.press("tab")
        await settle(app, pilot)
        assert app.screen.kind == "closes" and app.screen.loaded == 1
        assert "0.4000>0.0000" in screen_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, HistoryScreen)


async def assert_nothing_sent(rig: Rig, contracts: D) -> None:
    """A cancelled dialog: the exchange still holds ``contracts`` and the journal has no close row
    and no console order or fill."""
    assert await exchange_position(rig) == contracts
    await rig.flush()
    assert rig.trades() == [] and [r for r in rig.orders() if r["origin"] == "console"] == []


@pytest.mark.parametrize("answer", ["n", "escape"])
async def test_c_then_n_or_esc_leaves_the_position_open(rig: Rig, answer: str) -> None:
    engine = await rig.start_engine()
    await rig.ext.create_order(BTC, "market", "buy", 4)
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await rows_shown(app, 1)
        await pilot.press("c", answer)
        await settle(app, pilot)
        assert len(app.screen_stack) == 1
    await assert_nothing_sent(rig, D("4"))


async def test_a_close_the_engine_refuses_is_one_error_notification(rig: Rig) -> None:
    """The position goes flat behind the open confirmation (the panes do not flush under a
    modal); at `y` the dialog sees the engine's PositionGone for the life it showed, sends
    nothing, and the trader is told once."""
    engine = await rig.start_engine()
    await rig.ext.create_order(BTC, "market", "buy", 4)
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await rows_shown(app, 1)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await rig.ext.create_order(BTC, "market", "sell", 4, params={"reduceOnly": True})
        await wait_for(lambda: engine.positions() == [], what="the engine to see it flat")
        await pilot.press("y")
        await settle(app, pilot)
        app.flush_now()  # the engine's Notice of the same refusal arrives through the feed
        await pilot.pause()
    errors = [m for m, sev in notes(app) if sev == "error"]
    assert errors == ["no open BTC/USDT:USDT net position to close"]
    assert [t["reason"] for t in rig.trades()] == ["external"]


# ==================================================================== p


async def test_p_percentages_coins_and_contracts_close_exactly_that_size(rig: Rig) -> None:
    engine = await rig.start_engine()
    await rig.ext.create_order(BTC, "market", "buy", 100)  # 1 BTC
    app = build(engine)
    # (how, remaining contracts, coins closed, coins after)
    steps: list[tuple[Any, str, str, str]] = [
        ("#pct-25", "75", "0.25", "0.75"),            # the 25% button
        ("50%", "37.5", "0.375", "0.375"),            # typed percentage
        ("75%", "9.38", "0.2812", "0.0938"),          # 28.125 rounds DOWN to the lot: 28.12
        ("0.05 btc", "4.38", "0.05", "0.0438"),       # typed coins: 5 contracts
        ("1.38", "3", "0.0138", "0.03"),              # typed contracts
        ("2 ct", "1", "0.02", "0.01"),                # typed contracts with a unit
    ]
    async with app.run_test(size=SIZE) as pilot:
        await rows_shown(app, 1)
        before = D("1")
        for n, (how, remaining, closed, after) in enumerate(steps, start=1):
            await pilot.press("p")
            assert isinstance(app.screen, PartialCloseScreen)
            if how.startswith("#"):
                await pilot.click(how)
            else:
                await pilot.press(*how, "enter")
            assert isinstance(app.screen, ConfirmScreen), how
            assert f"remaining {D(remaining):.2f} ct" in screen_text(app), how
            await pilot.press("y")
            await settle(app, pilot)
            await wait_position(rig, remaining)
            rows = await console_rows(rig, n)
            last = rows[-1]
            assert (last["size_before"], last["size_closed"], last["size_after"]) == (
                before, D(closed), D(after)), how
            assert last["contracts_closed"] == before / D("0.01") - D(remaining), how
            before = D(after)

            def synced(remaining: str = remaining) -> bool:
                app.flush_now()
                sel = app.positions.selected
                return sel is not None and sel.contracts == D(remaining)
            await wait_for(synced, what=f"pane at {remaining}")
    assert (await ccxt_open(rig)) == {BTC: D("1")}
    messages = [m for m, _ in notes(app)]
    assert "closing 25 contracts (0.25 BTC) of BTC/USDT:USDT net" in messages
    assert "closing 28.12 contracts (0.2812 BTC) of BTC/USDT:USDT net" in messages


@BOTH
async def test_p_rejects_sizes_below_the_lot_and_above_the_position(rig: Rig) -> None:
    engine = await rig.start_engine()
    await rig.outside("buy", 10)
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await rows_shown(app, 1)
        await pilot.press("p")
        # Bybit: contracts are coins, so a size and every refusal is in BTC
        cases = ((("0.00005", "not a multiple of the lot size (0.0001 BTC)"),
                  ("0.00005 btc", "not a multiple of the lot size (0.0001 BTC)"),
                  ("0.1001", "more than the position (0.1 BTC)"),
                  ("0.2 btc", "more than the position (0.1 BTC)"),
                  ("0%", "a percentage from 0 to 100")) if rig.bybit else
                 (("0.005", "not a multiple of the lot size (0.01 contracts)"),
                  ("0.00005 btc", "not a multiple of the lot size (0.01 contracts)"),
                  ("10.01", "more than the position (10 contracts)"),
                  ("0.2 btc", "more than the position (10 contracts)"),
                  ("0%", "a percentage from 0 to 100")))
        assert (" ct (" in screen_text(app)) is not rig.bybit  # the title says the size once on Bybit
        for typed, error in cases:
            await pilot.press(*typed)
            await pilot.pause()
            assert f"✗ {error}" in screen_text(app), typed  # shown while typing
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, PartialCloseScreen), typed  # Enter does not go on
            assert (error, "error") in notes(app), typed
            await pilot.press(*["backspace"] * len(typed))
        await pilot.press("escape")
        await settle(app, pilot)
        assert len(app.screen_stack) == 1
    await assert_nothing_sent(rig, rig.ct(10))


# ==================================================================== X


async def test_X_then_n_or_esc_then_y_closes_everything(rig: Rig) -> None:
    engine = await rig.start_engine()
    await rig.ext.create_order(BTC, "market", "sell", 10)
    await rig.ext.create_order(ETH, "market", "buy", 5)
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await rows_shown(app, 2)
        for answer in ("n", "escape"):
            await pilot.press("X")
            assert "Close all 2 position(s)?" in screen_text(app)
            await pilot.press(answer)
            await settle(app, pilot)
            assert len(app.screen_stack) == 1
        assert await ccxt_open(rig) == {BTC: D("10"), ETH: D("5")}
        await pilot.press("X", "y")
        await settle(app, pilot)
        await wait_position(rig, "0")
        await wait_position(rig, "0", ETH_ID)
        assert await ccxt_open(rig) == {}
        await rows_shown(app, 0, "0 position rows (panes empty)")
    rows = await console_rows(rig, 2)
    assert sorted((r["symbol"], r["side"], r["size_before"], r["size_after"]) for r in rows) == [
        (BTC, "short", D("0.1"), D("0")), (ETH, "long", D("0.5"), D("0"))]
    message = next(m for m, sev in notes(app) if "closing all of" in m)
    assert "10 contracts (0.1 BTC) of BTC/USDT:USDT" in message
    assert "5 contracts (0.5 ETH) of ETH/USDT:USDT" in message


# ==================================================================== o


async def _order(app: PerpdeskApp, pilot: Any, *, side: str, type_: str, size: str,
                 price: str = "", reduce: bool = False) -> str:
    """Fill the order form and submit it; returns the confirmation's text (still open)."""
    await pilot.press("o")
    form = app.screen
    form.query_one("#side").value = side
    form.query_one("#type").value = type_
    form.query_one("#reduce").value = reduce
    await pilot.pause()
    await pilot.press(*size)
    if price:
        await pilot.press("tab", *price)
    await pilot.press("enter")
    assert isinstance(app.screen, ConfirmScreen), screen_text(app)
    return screen_text(app)


@BOTH
async def test_o_market_then_limit_reduce_only_fill_on_the_exchange(rig: Rig) -> None:
    engine = await rig.start_engine()
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await mark_known(rig, engine, "60000")
        # Bybit: sizes are typed and said in BTC only
        text = await _order(app, pilot, side="buy", type_="market", size=str(rig.ct(5)))
        assert ("BUY BTC/USDT  0.0500 BTC" if rig.bybit else "BUY BTC/USDT  5.00 ct (0.0500 BTC)") in text
        assert "estimated notional 3,000.00 USDT (at mark)" in text
        await pilot.press("y")
        await settle(app, pilot)
        await wait_position(rig, "5")
        said = "0.05 BTC" if rig.bybit else "5 contracts (0.05 BTC)"
        assert any(m.startswith("order ") and f"placed: buy {said} BTC/USDT:USDT "
                   "market" in m for m, _ in notes(app)), notes(app)
        await rows_shown(app, 1)

        text = await _order(app, pilot, side="sell", type_="limit", size=str(rig.ct(2)), price="60050",
                            reduce=True)
        assert ("SELL BTC/USDT  0.0200 BTC" if rig.bybit else "SELL BTC/USDT  2.00 ct (0.0200 BTC)") in text
        assert "limit @ 60,050.0  reduce-only" in text
        assert "estimated notional 1,201.00 USDT (at limit price)" in text
        await pilot.press("y")
        await settle(app, pilot)
        (resting,) = await rig.ext.fetch_open_orders(BTC)
        assert (resting["side"], resting["type"], resting["price"], resting["amount"],
                resting["reduceOnly"]) == ("sell", "limit", 60050.0, float(rig.ct(2)), True)
        assert await exchange_position(rig) == rig.ct(5)

        def open_order_seen() -> bool:
            app.flush_now()
            return len(app.open_orders) == 1
        await wait_for(open_order_seen, what="the resting order at the console")
        await pilot.press("q")  # an open order: quitting asks first
        assert "Quit with orders in flight?" in screen_text(app)
        await pilot.press("n")
        assert app.is_running

        await set_price(rig.srv, "60060")  # crosses the resting sell
        await wait_position(rig, "3")
        (row,) = await console_rows(rig, 1)
        assert (row["size_before"], row["size_closed"], row["size_after"], row["exit_price"]) == (
            D("0.05"), D("0.02"), D("0.03"), D("60050"))
        fills = [f for f in rig.fills() if f["origin"] == "console"]
        assert [(f["side"], f["contracts"], f["reduce_only"]) for f in fills] == [
            ("buy", rig.ct(5), "false"), ("sell", rig.ct(2), "true")]
        assert await rig.ext.fetch_open_orders(BTC) == []


async def test_o_reduce_only_in_the_wrong_direction_is_rejected_by_the_exchange(rig: Rig) -> None:
    engine = await rig.start_engine()
    await rig.ext.create_order(BTC, "market", "buy", 3)
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await rows_shown(app, 1)
        await mark_known(rig, engine, "60000")
        await _order(app, pilot, side="buy", type_="market", size="1", reduce=True)
        await pilot.press("y")
        await settle(app, pilot)
        app.flush_now()
        await pilot.pause()
    errors = [m for m, sev in notes(app) if sev == "error"]
    assert len(errors) == 1 and "51169" in errors[0], errors
    assert await exchange_position(rig) == D("3")


# ==================================================================== r


@BOTH
async def test_r_reconcile_shows_a_clean_diff_after_trading(rig: Rig) -> None:
    engine = await rig.start_engine()
    await rig.outside("buy", 8)
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await rows_shown(app, 1)
        await pilot.press("p", *"50%", "enter", "y")
        await settle(app, pilot)
        await wait_position(rig, "4")
        await console_rows(rig, 1)
        await pilot.press("r")
        await settle(app, pilot)
        assert isinstance(app.screen, ReconcileScreen)
        assert app.screen.report.ok
        text = screen_text(app)
        assert "Reconcile: journal matches the exchange" in text and "DIFF" not in text
        assert "BTC/USDT:USDT" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, ReconcileScreen)
    assert "reconciling journal with the exchange…" in [m for m, _ in notes(app)]


# ==================================================================== restart


@BOTH
async def test_header_and_panes_survive_a_restart(rig: Rig) -> None:
    """Trade, stop, start a new engine on the same journal: the new console's header shows the
    same day totals and the panes the same rows, each counted once."""
    engine = await rig.start_engine()
    await rig.outside("buy", 20)
    await control(rig.srv, "/sim/v1/funding", {"instId": BTC_ID, "rate": "0.0001"})
    await rig.wait_funding(1)
    await set_price(rig.srv, "60200")
    assert (await engine.submit(ClosePosition(BTC, "net", rig.ct(5)))).ok
    await rig.outside("sell", 15, reduce_only=True)
    await rig.wait_trades(2)
    await rig.flush()
    await rig.stop_engine()

    trades, fills, funding = rig.trades(), rig.fills(), rig.funding()
    assert len(trades) == 2 and len(fills) == 3 and len(funding) == 1
    realized = sum((t["net_pnl"] for t in trades), D(0))
    fees = sum((f["fee"] for f in fills), D(0))
    paid = funding[0]["amount"]
    assert realized != 0 and fees > 0 and paid < 0

    engine = await rig.start_engine()
    app = build(engine)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)  # the history worker
        app.flush_now()
        await pilot.pause()
        assert app.feed.seeded
        day = app.feed.day(app.clock().date())
        assert (day.realized, day.fees, day.funding) == (realized, fees, paid)
        assert (app.closes.row_count, app.fills.row_count, app.funding.row_count) == (2, 3, 1)
        header = screen_text(app).splitlines()[0]
        assert f"Today {realized:+,.2f}" in header and f"Fees {fees:,.4f}" in header
        assert f"Fund {paid:+,.4f}" in header


@BOTH
async def test_a_confirmation_asks_again_when_the_position_flips_under_it(rig: Rig) -> None:
    """Issue 10: `c` on a long of 1, the position flips to a short of 2 from outside while the
    dialog is open; `y` must send nothing and show the new facts; a second `y` closes the short."""
    engine = await rig.start_engine()
    await rig.outside("buy", 1)
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await rows_shown(app, 1)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        long_1 = "BTC/USDT long  0.0100 BTC" if rig.bybit else "BTC/USDT long  1.00 ct (0.0100 BTC)"
        assert long_1 in screen_text(app)
        await rig.outside("sell", 3)  # long 1 -> short 2, outside
        await wait_position(rig, "-2")
        await wait_for(lambda: [(p.side.value, p.contracts) for p in engine.positions()]
                       == [("short", rig.ct(2))], what="the engine to see the short of 2")
        await pilot.press("y")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmScreen)  # asked again, not answered
        body = screen_text(app)
        assert "changed since it was shown — nothing sent" in body
        short_2 = "BTC/USDT short  0.0200 BTC" if rig.bybit else "BTC/USDT short  2.00 ct (0.0200 BTC)"
        assert short_2 in body and long_1 not in body
        await assert_nothing_sent_since(rig, -rig.ct(2))
        await pilot.press("y")
        await settle(app, pilot)
        assert len(app.screen_stack) == 1
        await wait_position(rig, "0")
    closing = [f for f in rig.fills() if f["origin"] == "console"]
    assert [(f["side"], f["contracts"]) for f in closing] == [("buy", rig.ct(2))]


async def assert_nothing_sent_since(rig: Rig, contracts: D) -> None:
    """The exchange still holds ``contracts`` and the console sent no order."""
    assert await exchange_position(rig) == contracts
    await rig.flush()
    assert [r for r in rig.orders() if r["origin"] == "console"] == []
