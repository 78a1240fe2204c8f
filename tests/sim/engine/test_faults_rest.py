"""Fault injection on the REST side (issue 6): 5xx, timeouts and 50011 rate limits answered by the
simulator on demand (POST /sim/v1/fault) during a backfill and during console commands; the
simulator restarted on the same port; this computer's clock 40 s off the exchange's.

The rules under test: a read is retried briefly, a resync that still fails is retried by the
engine until the fault clears and then completes; an order is never sent twice — a rate-limited
one is re-sent (OKX executed nothing), an unanswered one is looked up by its client id and the
trader is told what really happened. Every test ends checked against the exchange's history.
The faults a venue meets the same way run on both faces of the simulator (``BOTH``: OKX v5, and
Bybit v5 through the native bybit venue, whose gateway answers 10006 / plain 503 / 504); the
ones that replace an OKX route or an OKX client call stay OKX-only.
"""
from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

import ccxt.async_support as ccxt
import pytest

from core.engine import Engine
from core.events import ClosePosition, LinkState, PlaceOrder
from core.journal import Journal
from core.model import OrderSide
from core.settings.config import SIM_DEMO_CREDENTIALS, ExchangeSettings
from core.sim.exchange import SimError
from core.venue import OkxVenue, VenueError
from tests.helpers.engine_helpers import (
    BTC,
    BTC_ID,
    Rig,
    set_price,
    wait_for,
)
from tests.helpers.fault_helpers import (
    BOTH,
    SAID,
    LogCapture,
    _orders_on_exchange,
    assert_matches_exchange,
    assert_plain,
    backfilled_buy_closes,
    fault,
    fill_lost_under_a_fault,
    notice_with,
    notices,
    wait_log,
    wait_notice,
)

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("fast_resync")]


# ------------------------------------------------------------------ during a backfill

@BOTH
@pytest.mark.parametrize("kind", ["5xx", "rate_limit", "timeout"])
async def test_backfill_retries_through_a_short_fault(rig: Rig, logs: LogCapture, kind: str) -> None:
    """Two faulted answers in the middle of a resync: retried, the gap is backfilled once."""
    engine = await fill_lost_under_a_fault(rig, kind, 2, delay=0.3)  # armed before the engine has reconnected
    await wait_log(logs, "RESYNC reconnect done: 1 fills")
    retry = logs.one("REST RETRY")
    assert SAID[rig.protocol][kind] in retry.message
    assert rig.srv.faults == []
    assert not [t for t in notices(rig) if "failed" in t]  # absorbed, nothing to bother the trader
    await backfilled_buy_closes(rig, engine, logs)


# ------------------------------------------------------------------ during a console command

@BOTH
async def test_rate_limited_order_is_resent_once_and_placed_once(rig: Rig, logs: LogCapture) -> None:
    engine = await rig.start_engine()
    await fault(rig, "rate_limit", 1)
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10)))
    assert res.ok, res
    logs.one("REST RETRY", "rate limited, nothing executed")
    await rig.wait_fills(1)
    await assert_matches_exchange(rig, expect_fills=1)
    # a rate limit that does not lift (the first send and both re-sends): refused, nothing sent
    await fault(rig, "rate_limit", 3)
    res = await engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(4)))
    assert not res.ok
    assert_plain(res.message)
    assert "rate limit" in res.message and SAID[rig.protocol]["rate_limit"] in res.message
    assert "wait a moment" in res.message
    assert notice_with(rig, "rate limit") == res.message
    assert rig.srv.faults == []
    assert [p.contracts for p in engine.positions()] == [rig.ct(10)]
    res = await engine.submit(ClosePosition(BTC))
    assert res.ok, res
    await rig.wait_trades(1)
    await assert_matches_exchange(rig, expect_fills=2, expect_closes=1)


@BOTH
@pytest.mark.parametrize("kind", ["5xx", "client_timeout"])
async def test_unanswered_order_is_looked_up_and_reported_not_placed(
        rig: Rig, logs: LogCapture, kind: str) -> None:
    engine = await rig.start_engine()
    assert rig.venue is not None
    if kind == "client_timeout":
        rig.venue.rest.ex.timeout = 400  # ms; the simulator holds the request for 5 s
        await fault(rig, "timeout", 1, delay=5)
    else:
        await fault(rig, "5xx", 1)
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10)))
    assert not res.ok
    assert_plain(res.message)
    assert "the order was not placed (looked up by its client id)" in res.message
    if kind == "client_timeout":
        assert "did not answer in time (no answer within 0.4 s)" in res.message
    else:
        assert "unavailable" in res.message and SAID[rig.protocol]["5xx"] in res.message
    assert await _orders_on_exchange(rig) == 0
    assert engine.positions() == []
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10)))  # trading goes on
    assert res.ok, res
    await rig.wait_fills(1)
    await assert_matches_exchange(rig, expect_fills=1)
    assert not logs.tracebacks()


def _execute_then_fail(rig: Rig, route: tuple[str, str]) -> None:
    """The next request on ``route`` is executed by the exchange, then answered with a 5xx."""
    routes: dict[tuple[str, str], Any] = rig.srv.bybit.routes if rig.bybit else rig.srv.rest.routes
    private, handler = routes[route]

    def execute_then_fail(acct, q, body):  # type: ignore[no-untyped-def]
        routes[route] = (private, handler)
        handler(acct, q, body)
        if rig.bybit:  # Bybit's own word for it: retCode 10016, "System error"
            raise SimError("10016", "System error. Please try again later.", 200)
        raise SimError("50026", "System error, please try again later", 503)

    routes[route] = (private, execute_then_fail)


@BOTH
async def test_order_executed_but_answer_lost_is_found_not_resent(rig: Rig, logs: LogCapture) -> None:
    """The exchange executes the order and then answers 5xx: the lookup finds it; one order.
    The same for the close key (OKX: POST /trade/close-position, whose reply has no ordId;
    Bybit: a reduce-only market order, looked up by its orderLinkId)."""
    engine = await rig.start_engine()
    place, close = ((("POST", "order/create"),) * 2 if rig.bybit
                    else (("POST", "trade/batch-orders"), ("POST", "trade/close-position")))
    _execute_then_fail(rig, place)
    res = await engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(7)))
    assert res.ok, res
    (order_id,) = res.order_ids
    logs.one("ORDER CONFIRMED BY LOOKUP", order_id)
    await wait_for(lambda: [p.contracts for p in engine.positions()] == [rig.ct(7)], what="short")
    assert await _orders_on_exchange(rig) == 1
    _execute_then_fail(rig, close)
    res = await engine.submit(ClosePosition(BTC))
    assert res.ok, res
    assert len(logs.matching("ORDER CONFIRMED BY LOOKUP")) == 2
    await rig.wait_trades(1)
    assert await _orders_on_exchange(rig) == 2
    await assert_matches_exchange(rig, expect_fills=2, expect_closes=1)
    origins = {f["order_id"]: f["origin"] for f in rig.fills()}
    assert origins[order_id] == "console" and sorted(origins.values()) == ["console", "console"]


# ------------------------------------------------------------------ simulator restarted

@BOTH
async def test_simulator_restarted_on_the_same_port(rig: Rig, logs: LogCapture) -> None:
    """The exchange goes away (state kept, as a real one keeps it), a take-profit fires while it
    is unreachable, and it comes back on the same port."""
    engine = await rig.start_engine()
    await rig.ext.create_order(BTC, "market", "buy", rig.amt(20), None, {"takeProfit": {"triggerPrice": 61000}})
    await rig.wait_fills(1)
    port = rig.srv.port
    await rig.srv.stop()
    await wait_notice(rig, "private stream disconnected")
    await wait_for(lambda: engine.links().get("private") is not LinkState.CONNECTED, what="link state")
    res = await engine.submit(ClosePosition(BTC))
    assert not res.ok
    assert_plain(res.message)
    assert f"cannot reach exchange at {rig.srv.url}" in res.message and "perpdesk sim" in res.message
    rig.srv.set_price(BTC_ID, D("61000"))  # TP fires on the exchange while nobody can see it
    await rig.srv.start()
    assert rig.srv.port == port
    await wait_notice(rig, "private stream reconnected")
    (row,) = await rig.wait_trades(1, timeout=20)
    assert row["reason"] == "tp" and row["size_after"] == 0 and row["gross_pnl"] == D("200")
    await wait_for(lambda: engine.positions() == [], what="flat")
    await wait_for(lambda: all(s is LinkState.CONNECTED for s in engine.links().values()),
                   what=f"every stream connected again: {engine.links()}")
    await assert_matches_exchange(rig, expect_fills=2, expect_closes=1)
    assert logs.one("WS private DISCONNECTED").level == "WARNING"
    assert not logs.tracebacks()


# ------------------------------------------------------------------ clock skew

def _skew(rig: Rig, seconds: float) -> None:
    """The exchange's clock runs ``seconds`` ahead of this computer's (negative: behind)."""
    rig.srv.exchange.clock = lambda: int(time.time() * 1000 + seconds * 1000)


@BOTH
async def test_clock_40s_behind_still_trades_with_one_clear_warning(rig: Rig, logs: LogCapture) -> None:
    _skew(rig, 40)
    await rig.ext.load_time_difference()  # the outside client syncs too (it checks history)
    engine = await rig.start_engine()
    text = notice_with(rig, "clock is 40")
    assert "behind the exchange's" in text and "NTP" in text
    logs.one("CLOCK this computer's clock is 40")
    assert engine.links()["private"] is LinkState.CONNECTED  # WS login signed with its time too
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10)))
    assert res.ok, res
    await wait_for(lambda: [p.contracts for p in engine.positions()] == [rig.ct(10)], what="position")
    await set_price(rig.srv, "60300")
    res = await engine.submit(ClosePosition(BTC))
    assert res.ok, res
    (row,) = await rig.wait_trades(1)
    assert row["gross_pnl"] == D("30")
    await assert_matches_exchange(rig, expect_fills=2, expect_closes=1)


@BOTH
async def test_clock_jump_mid_run_is_resynced_and_the_gap_backfilled(rig: Rig, logs: LogCapture) -> None:
    """This computer's clock jumps 40 s ahead while running, and the connection dies silently
    while a whole position life happens: the request is re-signed, the gap backfilled."""
    engine = await rig.start_engine()
    _skew(rig, -40)
    await rig.ext.load_time_difference()
    # a silent partition: pushes stop arriving, the drop is noticed only afterwards
    original = rig.srv.hub.fanout
    rig.srv.hub.fanout = lambda pushes: None  # type: ignore[method-assign]
    await rig.outside("buy", 10)
    await rig.outside("sell", 10, reduce_only=True)
    rig.srv.hub.fanout = original  # type: ignore[method-assign]
    await rig.srv.hub.drop_all()
    await wait_log(logs, "RESYNC reconnect done: 2 fills")
    logs.one("CLOCK this computer's clock is 40.0 s ahead of the exchange's")
    (row,) = await rig.wait_trades(1)
    assert row["size_before"] == D("0.1") and row["size_after"] == 0
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(3)))
    assert res.ok, res
    await rig.wait_fills(3)
    await assert_matches_exchange(rig, expect_fills=3, expect_closes=1)
    assert not logs.tracebacks()


async def test_clock_off_and_exchange_time_unavailable_is_one_clear_message(
        rig: Rig, logs: LogCapture, monkeypatch: pytest.MonkeyPatch) -> None:
    _skew(rig, 40)
    venue = OkxVenue(ExchangeSettings(venue="sim", url=rig.srv.url, symbols=(BTC,)), SIM_DEMO_CREDENTIALS)

    async def no_time(params: dict | None = None) -> int:  # e.g. a proxy that serves no /public/time
        raise ccxt.NotSupported("okx fetchTime() is not available here")

    monkeypatch.setattr(venue.rest.ex, "fetch_time", no_time)
    engine = Engine(venue, Journal(rig.journal_dir))
    with pytest.raises(VenueError) as err:
        await engine.start()
    message = str(err.value)
    assert_plain(message)
    assert err.value.kind == "clock"
    assert "request time" in message and "OKX 50102" in message and "clock" in message and "NTP" in message
    logs.one("CLOCK exchange time unavailable")
    await venue.close()
