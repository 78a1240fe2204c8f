"""Issue 10 item 1, the venue's part: an instrument's fills leave the push router in the order
they came, even when one of them waits for a REST look-up of its algo kind (a TP/SL fill whose
orders-algo push has not been seen). Other instruments are not held up meanwhile."""
from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from decimal import Decimal as D
from typing import Any

import pytest

from core.events import MalformedPush, MarkPrice
from core.model import Fill, Instrument, Origin
from core.venue import okx_parse as P
from core.venue import okx_push
from core.venue.okx_markets import Markets
from core.venue.okx_push import PushRouter
from tests.helpers.paths import FIXTURES

DOCS = FIXTURES / "okx_docs"
BTC = Instrument(symbol="BTC/USDT:USDT", inst_id="BTC-USDT-SWAP", contract_size=D("0.01"),
                 lot_size=D("0.01"), min_size=D("0.01"), tick_size=D("0.1"), base_ccy="BTC")
ETH = Instrument(symbol="ETH/USDT:USDT", inst_id="ETH-USDT-SWAP", contract_size=D("0.1"),
                 lot_size=D("0.01"), min_size=D("0.01"), tick_size=D("0.01"), base_ccy="ETH")


class SlowHistory:
    """The algo-kind memory; a look-up answers only once the test lets it."""

    def __init__(self) -> None:
        self.algo_kinds: OrderedDict[str, str] = OrderedDict()
        self.answer = asyncio.Event()
        self.asked: list[str] = []

    async def algo_kind(self, algo_id: str) -> str | None:
        self.asked.append(algo_id)
        await self.answer.wait()
        self.algo_kinds[algo_id] = "sl"
        return "sl"

    def remember_algo(self, algo_id: str, kind: str) -> None:
        self.algo_kinds[algo_id] = kind


def order(inst: Instrument, trade_id: str, **over: Any) -> dict[str, Any]:
    item = json.loads((DOCS / "ws_orders.json").read_text())["example"]["data"][0]
    return {**item, "instId": inst.inst_id, "tradeId": trade_id, "ordId": f"o{trade_id}",
            "algoId": "", "source": "", "tpTriggerPx": "", "slTriggerPx": "", **over}


def stop_fill(inst: Instrument, trade_id: str, algo_id: str) -> dict[str, Any]:
    """A TP/SL fill the push cannot classify: source 7, no trigger hints."""
    return order(inst, trade_id, algoId=algo_id, source="7")


def make_router(history: SlowHistory) -> tuple[PushRouter, list[Fill], set[asyncio.Task[None]]]:
    markets = Markets((BTC.symbol, ETH.symbol))
    markets.by_id = {BTC.inst_id: BTC, ETH.inst_id: ETH}
    tasks: set[asyncio.Task[None]] = set()

    def spawn(coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    router = PushRouter(markets, history, spawn)  # type: ignore[arg-type]
    out: list[Fill] = []
    router.sink = lambda e: out.append(e) if isinstance(e, Fill) else None
    return router, out, tasks


async def test_later_fills_of_an_instrument_wait_behind_its_algo_look_up() -> None:
    history = SlowHistory()
    router, out, tasks = make_router(history)
    assert P.needs_algo_lookup(stop_fill(BTC, "1", "a1"), {})
    router.on_push({"arg": {"channel": "orders"}, "data": [
        stop_fill(BTC, "1", "a1"), order(BTC, "2"), order(ETH, "3"), stop_fill(BTC, "4", "a2"),
        order(BTC, "5")]})
    await asyncio.sleep(0.05)
    assert [f.fill_id for f in out] == ["3"]  # ETH is not held up; BTC waits behind fill 1
    assert history.asked == ["a1"]

    history.answer.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert [f.fill_id for f in out] == ["3", "1", "2", "4", "5"]
    assert [f.origin for f in out if f.fill_id in ("1", "4")] == [Origin.SL, Origin.SL]

    router.on_push({"arg": {"channel": "orders"}, "data": [order(BTC, "6")]})
    assert [f.fill_id for f in out][-1] == "6"  # the hold ended with its queue


async def test_a_look_up_that_never_answers_does_not_hold_the_fills_for_good(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(okx_push, "ALGO_LOOKUP_MAX_S", 0.2)
    router, out, tasks = make_router(SlowHistory())  # never answers
    router.on_push({"arg": {"channel": "orders"}, "data": [stop_fill(BTC, "1", "a1"), order(BTC, "2")]})
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert [(f.fill_id, f.origin) for f in out] == [("1", Origin.EXTERNAL), ("2", Origin.EXTERNAL)]


def mark_push(inst: Instrument, px: str) -> dict[str, Any]:
    return {"arg": {"channel": "mark-price", "instId": inst.inst_id},
            "data": [{"instId": inst.inst_id, "instType": "SWAP", "markPx": px, "ts": "1597026383085"}]}


async def test_a_mark_read_alone_reaches_the_engine_at_once_a_burst_keeps_its_newest() -> None:
    """The first mark of an instrument in a burst goes to the sink as it is read (one event-loop
    pass sooner than at the burst's end); later ones of the same burst wait, and only the newest
    follows after the burst; another instrument's first mark goes at once too."""
    router, _, _ = make_router(SlowHistory())
    marks: list[tuple[str, D]] = []
    router.sink = lambda e: marks.append((e.symbol, e.price)) if isinstance(e, MarkPrice) else None
    router.on_push(mark_push(BTC, "60000.1"))
    assert marks == [(BTC.symbol, D("60000.1"))]  # no loop pass needed
    router.on_push(mark_push(BTC, "60000.2"))
    router.on_push(mark_push(BTC, "60000.3"))
    router.on_push(mark_push(ETH, "3000.5"))
    assert marks == [(BTC.symbol, D("60000.1")), (ETH.symbol, D("3000.5"))]
    await asyncio.sleep(0)
    assert marks[2:] == [(BTC.symbol, D("60000.3"))]  # the burst's newest, once; 60000.2 never
    router.on_push(mark_push(BTC, "60000.4"))  # a new burst: at once again
    assert marks[3:] == [(BTC.symbol, D("60000.4"))]


async def test_an_unreadable_mark_is_skipped_alone_and_reported_an_unknown_instrument_ignored() -> None:
    """The mark path skips the generic item handler: a mark that cannot be read must still be
    skipped alone (the burst's other marks go through) and reported as a MalformedPush, and a
    mark of an instrument we do not trade is dropped without a report."""
    router, _, _ = make_router(SlowHistory())
    events: list[Any] = []
    router.sink = events.append
    router.on_push({"arg": {"channel": "mark-price", "instId": BTC.inst_id},
                    "data": [{"instId": BTC.inst_id, "markPx": "six", "ts": "1597026383085"},
                             {"instId": "DOGE-USDT-SWAP", "markPx": "0.1", "ts": "1597026383085"},
                             {"instId": ETH.inst_id, "markPx": "3000.5", "ts": "1597026383085"},
                             {"instId": ETH.inst_id, "ts": "1597026383086"}]})
    await asyncio.sleep(0)
    bad = [e for e in events if isinstance(e, MalformedPush)]
    assert [(e.stream, e.channel) for e in bad] == [("private", "mark-price"), ("private", "mark-price")]
    assert "not a decimal" in bad[0].reason and "markPx" in bad[1].reason
    assert [(e.symbol, e.price) for e in events if isinstance(e, MarkPrice)] == [(ETH.symbol, D("3000.5"))]
