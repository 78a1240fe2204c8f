"""The OKX parsers held against OKX's documented message shapes (tests/fixtures/okx_docs).

Each fixture file is one channel or endpoint: {"_doc", "_note", "kind", "path"|"channel",
"example"}; ``_doc`` names the doc section and ``_note`` says what was built by hand. Every parser
runs over them four ways: as documented, with "" in every field that may be empty, with every
optional field absent, and as a push or page of several items of which one is bad. The tests
named after an item of the "real OKX" issue failed before that item was fixed.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from core.config import ExchangeSettings
from core.events import AccountSnapshot, FundingSignal, MalformedPush, PositionPush
from core.model import Fill, Instrument, OrderUpdate, Origin
from core.venue import okx_parse as P
from core.venue.okx import OkxVenue
from core.venue.okx_history import parse_each
from core.venue.okx_push import latest_key

D = Decimal
DOCS = Path(__file__).parent / "fixtures" / "okx_docs"
BTC = Instrument(symbol="BTC/USDT:USDT", inst_id="BTC-USDT-SWAP", contract_size=D("0.01"),
                 lot_size=D("0.01"), min_size=D("0.01"), tick_size=D("0.1"), base_ccy="BTC")
BY_ID = {BTC.inst_id: BTC}


def doc(name: str) -> dict[str, Any]:
    return json.loads((DOCS / f"{name}.json").read_text())


def first(name: str, **over: Any) -> dict[str, Any]:
    return {**doc(name)["example"]["data"][0], **over}


# Parsers per fixture and the fields each one cannot do without (OKX always sends them).
PARSERS: dict[str, tuple[Callable[[dict[str, Any]], Any], tuple[str, ...]]] = {
    "ws_orders": (lambda i: P.parse_order_push(i, BTC), ("ordId", "side", "tradeId", "fillSz", "fillPx", "fillFee")),
    "ws_positions": (lambda i: P.parse_position(i, BTC), ()),
    "rest_positions": (lambda i: P.parse_position(i, BTC), ()),
    "ws_account": (lambda i: P.parse_account(i, "USDT"), ("details", "ccy")),
    "rest_account_balance": (lambda i: P.parse_account(i, "USDT"), ("details", "ccy")),
    "ws_balance_and_position": (lambda i: P.parse_funding_signals(i, BY_ID), ("eventType",)),
    "ws_orders_algo": (P.algo_kind_of, ()),
    "rest_positions_history": (lambda i: P.parse_position_history(i, BTC), ()),
    "rest_fills_history": (lambda i: P.parse_fill_history(i, BTC), ("ordId", "side", "tradeId", "fillSz", "fillPx", "fee")),
    "rest_bills_funding": (lambda i: P.parse_funding_bill(i, BTC), ("billId", "balChg")),
    "rest_bills_funding_isolated": (lambda i: P.parse_funding_bill(i, BTC), ("billId", "posBalChg")),
}


def test_every_fixture_has_the_shared_shape() -> None:
    names = sorted(p.stem for p in DOCS.glob("*.json"))
    assert names == sorted(PARSERS)
    for name in names:
        fx = doc(name)
        assert fx["_doc"].count("https://www.okx.com/docs-v5/en/#") == 1 and fx["_note"]
        assert fx["kind"] in ("rest", "ws")
        assert fx["path"].startswith("/api/v5/") if fx["kind"] == "rest" else fx["channel"] == fx["example"]["arg"]["channel"]
        assert isinstance(fx["example"]["data"], list) and fx["example"]["data"]


def _blank(item: Any, keep: tuple[str, ...]) -> Any:
    """Every string value "" (OKX's empty), except the fields in ``keep``; nested too."""
    if isinstance(item, dict):
        return {k: (v if k in keep else _blank(v, keep)) for k, v in item.items()}
    if isinstance(item, list):
        return [_blank(v, keep) for v in item]
    return "" if isinstance(item, str) else item


def _required_only(item: Any, keep: tuple[str, ...]) -> Any:
    if isinstance(item, dict):
        return {k: _required_only(v, keep) for k, v in item.items() if k in keep + ("instId",)}
    if isinstance(item, list):
        return [_required_only(v, keep) for v in item]
    return item


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parsers_read_documented_items_empty_fields_and_absent_optionals(name: str) -> None:
    parse, required = PARSERS[name]
    for item in doc(name)["example"]["data"]:
        assert parse(item) is not None or name == "ws_orders_algo"
        parse(_blank(item, required + ("instId", "ccy", "eventType", "side")))
        parse(_required_only(item, required + ("ccy", "eventType", "side")))


def test_documented_values() -> None:
    update, fill = P.parse_order_push(first("ws_orders"), BTC)
    assert fill is not None and update is not None
    assert fill.fee == D("0.3") and fill.contracts == D("1") and fill.price == D("60000")
    assert fill.origin is Origin.CONSOLE and update.avg_price == D("60000")
    pos = P.parse_position(first("ws_positions"), BTC)
    assert pos.contracts == D("1") and pos.margin_mode == "isolated" and pos.position_key == "1111111111111111111"
    hist = P.parse_position_history(first("rest_positions_history"), BTC)
    assert hist.close_type == 2 and hist.realized_pnl == D("9.04") and hist.fee == D("-0.61")
    hfill = P.parse_fill_history(first("rest_fills_history"), BTC)
    assert hfill.fee == D("0.3") and hfill.fill_id == "4444"
    signals = P.parse_funding_signals(first("ws_balance_and_position"), BY_ID)
    assert [s.symbol for s in signals] == [BTC.symbol]
    assert P.parse_funding_bill(first("rest_bills_funding"), BTC).amount == D("-0.1")


def test_several_rest_items_one_bad_only_the_bad_one_is_skipped() -> None:
    good = first("rest_positions_history")
    bad = {**good, "posId": "bad", "type": "x"}
    recs = parse_each("positions-history", [good, bad, {**good, "posId": "2"}],
                      lambda i: P.parse_position_history(i, BTC))
    assert [r.position_key for r in recs] == ["1111111111111111111", "2"]
    bills = parse_each("funding bill", [first("rest_bills_funding"), {"billId": "x"}, first("rest_bills_funding_isolated")],
                       lambda i: P.parse_funding_bill(i, BTC))
    assert [b.bill_id for b in bills] == ["6666", "6667"]


# ------------------------------------------------------------------ the venue's push path


class Router:
    """OkxVenue's push path with BTC configured and every event collected."""

    def __init__(self) -> None:
        self.venue = OkxVenue(ExchangeSettings(venue="sim", url="http://127.0.0.1:9", symbols=(BTC.symbol,)), None)
        self.venue.markets.by_symbol = {BTC.symbol: BTC}
        self.venue.markets.by_id = dict(BY_ID)
        self.events: list[object] = []
        self.venue._sink = self.events.append

    async def push(self, name: str, data: list[Any], stream: str = "private") -> list[object]:
        arg = doc(name)["example"]["arg"]
        self.venue._on_push({"arg": arg, "data": data}, stream)
        await asyncio.sleep(0)  # whole-state channels are emitted after the burst
        await asyncio.sleep(0)
        out, self.events[:] = list(self.events), []
        return out

    async def close(self) -> None:
        await self.venue.close()


async def test_several_push_items_one_bad_only_the_bad_one_is_skipped() -> None:
    r = Router()
    try:
        good = first("ws_orders")
        out = await r.push("ws_orders", [good, {**good, "tradeId": "4445", "fillPx": "abc"},
                                         {**good, "tradeId": "4446"}])
        fills = [e for e in out if isinstance(e, Fill)]
        assert [f.fill_id for f in fills] == ["4444", "4446"]
        assert [e.channel for e in out if isinstance(e, MalformedPush)] == ["orders"]
        assert sum(isinstance(e, OrderUpdate) for e in out) == 2
        out = await r.push("ws_balance_and_position", [first("ws_balance_and_position")])
        assert [type(e) for e in out] == [FundingSignal]
    finally:
        await r.close()


# ------------------------------------------------------------------ issue items 1-7, 11


def test_item1_account_figures_come_from_the_settle_currency_not_the_usd_totals() -> None:
    raw = first("rest_account_balance")  # USDT and BTC held; totalEq is the USD total of both
    acct = P.parse_account(raw, "USDT")
    assert acct is not None
    assert acct.equity == D("10000.5")  # details[USDT].eq, not totalEq 16000.5 (USD, every currency)
    assert acct.available == D("9000.25") and acct.unrealized_pnl == D("12.5")
    zero_upl = P.parse_account({**raw, "upl": "0"}, "USDT")  # top-level upl: multi-currency modes only
    assert zero_upl is not None and zero_upl.unrealized_pnl == D("12.5")


def test_item2_incremental_account_push_leaves_absent_currency_unchanged() -> None:
    btc_only = {**first("ws_account"), "details": [first("ws_account")["details"][1]]}
    assert P.parse_account(btc_only, "USDT") is None  # USDT absent: unchanged, not zero
    assert not P.account_mentions(btc_only, "USDT")


async def test_item2_router_emits_no_snapshot_for_a_push_without_the_settle_currency() -> None:
    r = Router()
    try:
        snapshot = first("ws_account")
        btc_only = {**snapshot, "details": [snapshot["details"][1]]}
        out = await r.push("ws_account", [snapshot])
        assert [e.available for e in out if isinstance(e, AccountSnapshot)] == [D("9000.25")]
        assert await r.push("ws_account", [btc_only]) == []
        both = await r.push("ws_account", [snapshot, btc_only])  # one burst: USDT must survive it
        assert [e.available for e in both if isinstance(e, AccountSnapshot)] == [D("9000.25")]
    finally:
        await r.close()


def test_item3_isolated_funding_bill_amount_is_in_posbalchg() -> None:
    iso = P.parse_funding_bill(first("rest_bills_funding_isolated"), BTC)
    assert iso.amount == D("-0.1")  # balChg is "0" for isolated: the money is in posBalChg
    no_pos_bal = P.parse_funding_bill(first("rest_bills_funding_isolated", posBalChg=""), BTC)
    assert no_pos_bal.amount == D("-0.1")  # then pnl
    cross = P.parse_funding_bill(first("rest_bills_funding"), BTC)
    assert cross.amount == D("-0.1")  # cross: balChg, as before
    received = P.parse_funding_bill(first("rest_bills_funding", balChg="0.25", pnl="0.25"), BTC)
    assert received.amount == D("0.25")


@pytest.mark.parametrize(("source", "hints", "origin"), [
    ("6", {}, Origin.EXTERNAL),  # plain trigger entry
    ("34", {}, Origin.EXTERNAL),  # chase order
    ("13", {}, Origin.EXTERNAL),  # an algo slice (iceberg / TWAP)
    ("", {}, Origin.EXTERNAL),  # nothing tells: never assumed to be a stop-loss
    ("7", {"slTriggerPx": "59000"}, Origin.SL),
    ("7", {"tpTriggerPx": "61000"}, Origin.TP),
])
def test_item4_origin_of_algo_born_orders(source: str, hints: dict[str, str], origin: Origin) -> None:
    raw = first("ws_orders", algoId="7777", clOrdId="", source=source, **hints)
    update, fill = P.parse_order_push(raw, BTC)
    assert fill is not None and update is not None
    assert fill.origin is origin and update.origin is origin


def test_item4_algo_type_decides_even_when_remembered() -> None:
    algo = first("ws_orders_algo")  # ordType trigger
    assert P.algo_kind_of(algo) == P.OTHER_ALGO
    _, fill = P.parse_order_push(first("ws_orders", algoId="7777", clOrdId=""), BTC, {"7777": P.algo_kind_of(algo)})
    assert fill is not None and fill.origin is Origin.EXTERNAL
    assert not P.needs_algo_lookup(first("ws_orders", algoId="7777", source="6"), {})
    assert P.needs_algo_lookup(first("ws_orders", algoId="7777", source="7"), {})


def test_item5_positions_coalesce_by_posid() -> None:
    cross = first("ws_positions", posId="1", mgnMode="cross")
    isolated = first("ws_positions", posId="2", mgnMode="isolated")
    assert latest_key("positions", cross) != latest_key("positions", isolated)
    assert latest_key("positions", {**cross, "posId": ""}) != latest_key("positions", {**isolated, "posId": ""})


async def test_item5_cross_and_isolated_net_positions_on_one_instrument_both_arrive() -> None:
    r = Router()
    try:
        cross = first("ws_positions", posId="1", mgnMode="cross", pos="2")
        isolated = first("ws_positions", posId="2", mgnMode="isolated", pos="-1")
        out = await r.push("ws_positions", [cross, isolated, {**cross, "pos": "3"}])
        got = sorted((p.position_key, p.margin_mode, p.contracts) for p in out if isinstance(p, PositionPush))
        assert got == [("1", "cross", D("3")), ("2", "isolated", D("-1"))]
    finally:
        await r.close()


def test_item6_fill_without_fillfee_is_malformed_not_fee_zero() -> None:
    raw = first("ws_orders")
    del raw["fillFee"]
    with pytest.raises(P.OkxParseError, match="fillFee"):
        P.parse_order_push(raw, BTC)
    with pytest.raises(P.OkxParseError, match="fillFee"):
        P.parse_order_push({**raw, "fillFee": ""}, BTC)
    update, fill = P.parse_order_push({**raw, "tradeId": ""}, BTC)  # a state change needs no fee
    assert fill is None and update is not None


async def test_item6_router_reports_the_fill_without_fee_for_a_resync() -> None:
    r = Router()
    try:
        raw = first("ws_orders")
        del raw["fillFee"]
        out = await r.push("ws_orders", [raw])
        assert not any(isinstance(e, Fill) for e in out)
        assert [(e.channel, "fillFee" in e.reason) for e in out if isinstance(e, MalformedPush)] == [("orders", True)]
    finally:
        await r.close()


def test_item7_avgpx_zero_is_none_and_bad_history_type_is_a_record_error() -> None:
    live = first("ws_orders", state="live", avgPx="0", accFillSz="0", tradeId="")
    update, _ = P.parse_order_push(live, BTC)
    assert update is not None and update.avg_price is None
    with pytest.raises(P.OkxParseError, match="type 'abc'"):
        P.parse_position_history(first("rest_positions_history", type="abc"), BTC)


@pytest.mark.parametrize(("venue", "sandbox", "sent"), [("sim", False, True), ("okx", True, True), ("okx", False, False)])
async def test_item11_demo_keys_send_x_simulated_trading(venue: str, sandbox: bool, sent: bool) -> None:
    """A real request, read on the wire: the simulator's keys and OKX demo keys need the header."""
    seen: list[str | None] = []

    async def time_(request: web.Request) -> web.Response:
        seen.append(request.headers.get("x-simulated-trading"))
        return web.json_response({"code": "0", "msg": "", "data": [{"ts": "1700000000000"}]})

    app = web.Application()
    app.router.add_get("/api/v5/public/time", time_)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    v = OkxVenue(ExchangeSettings(venue=venue, sandbox=sandbox, url=f"http://127.0.0.1:{port}",
                                  symbols=(BTC.symbol,)), None)
    try:
        assert await v.sync_clock()
    finally:
        await v.close()
        await runner.cleanup()
    assert seen == (["1"] if sent else [None])
