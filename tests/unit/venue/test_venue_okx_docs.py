"""The OKX parsers held against OKX's documented message shapes (tests/fixtures/okx_docs).

Each fixture file is one channel or endpoint: {"_doc", "_note", "kind", "path"|"channel",
"example"}; ``_doc`` names the doc section, ``example`` is that section's documented example as the
docs give it, and ``_note`` says where it was read and what, if anything, was built by hand (the
docs give no funding-fee bill). The documented examples are other instruments than ours (SPOT
BTC-USDT, ETH futures...): tests that route them through the venue move them onto the configured
instrument with ``on_btc`` and change nothing else unless they say so. Every parser
runs over them four ways: as documented, with "" in every field that may be empty, with every
optional field absent, and as a push or page of several items of which one is bad. The tests
named after an item of the "real OKX" issue failed before that item was fixed.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.events import (
    AccountSnapshot,
    Candle,
    FundingRate,
    FundingSignal,
    MalformedPush,
    MarkPrice,
    PositionPush,
)
from core.model import Fill, Instrument, Liquidity, OrderState, OrderUpdate, Origin
from core.settings.config import ExchangeSettings
from core.venue import okx_parse as P
from core.venue.okx import OkxVenue
from core.venue.okx_candles import parse_candle
from core.venue.okx_history import parse_each
from core.venue.okx_push import latest_key
from tests.helpers.okx_docs import BTC
from tests.helpers.paths import FIXTURES

D = Decimal
DOCS = FIXTURES / "okx_docs"
BY_ID = {BTC.inst_id: BTC}


def doc(name: str) -> dict[str, Any]:
    return json.loads((DOCS / f"{name}.json").read_text())


def first(name: str, **over: Any) -> dict[str, Any]:
    return {**doc(name)["example"]["data"][0], **over}


def on_btc(name: str, **over: Any) -> dict[str, Any]:
    """The documented item on the configured instrument (the router ignores other instruments)."""
    return first(name, instId=BTC.inst_id, **over)


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
    "rest_bills": (lambda i: P.funding_bill_or_none(i, BY_ID), ()),
    "ws_mark_price": (lambda i: P.parse_mark_price(i, BTC), ("markPx",)),
    "rest_public_mark_price": (lambda i: P.parse_mark_price(i, BTC), ("markPx",)),
    "ws_funding_rate": (lambda i: P.parse_funding_rate(i, BTC), ("fundingRate",)),
    "rest_public_funding_rate": (lambda i: P.parse_funding_rate(i, BTC), ("fundingRate",)),
}
# Parsers whose honest answer to a documented item is None: a conditional algo with one trigger
# has a kind but the blanked/stripped variants do not; a trade bill is no funding bill.
NONE_IS_AN_ANSWER = ("ws_orders_algo", "rest_bills")


def test_every_fixture_has_the_shared_shape() -> None:
    names = sorted(p.stem for p in DOCS.glob("*.json"))
    assert set(PARSERS) <= set(names)  # every parser's fixture exists; the rest feed the sim schema test
    for name in names:
        fx = doc(name)
        assert fx["_doc"].count("https://www.okx.com/docs-v5/en/#") == 1 and fx["_note"]
        assert fx["kind"] in ("rest", "ws")
        if fx["kind"] == "rest":
            assert fx["path"].startswith("/api/v5/")
        else:  # the docs show one bar of the candle<bar> family (candle1D); every bar has that shape
            shown = fx["example"]["arg"]["channel"]
            assert fx["channel"] == shown or (fx["channel"].startswith("candle") and shown.startswith("candle"))
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
        assert parse(item) is not None or name in NONE_IS_AN_ANSWER
        parse(_blank(item, required + ("instId", "ccy", "eventType", "side")))
        parse(_required_only(item, required + ("ccy", "eventType", "side")))


# Candle fixtures: rows are arrays [ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm], read by
# position; the first six are required, the last three optional (an old row had 7 fields).
CANDLES = {"market_candles": "1m", "market_history_candles": "1H", "ws_candle1m": "1m", "ws_candle5m": "5m"}
CANDLE_REQUIRED = 6


@pytest.mark.parametrize("name", sorted(CANDLES))
def test_candle_parser_reads_documented_rows_empty_optionals_and_absent_optionals(name: str) -> None:
    bar = CANDLES[name]
    for row in doc(name)["example"]["data"]:
        candle = parse_candle(row, BTC, bar)
        assert candle.bar == bar and candle.confirmed == (row[8] == "1") and candle.close == D(row[4])
        blank_volumes = parse_candle([*row[:CANDLE_REQUIRED], "", "", row[8]], BTC, bar)  # volCcy, volCcyQuote ""
        assert blank_volumes == candle
        for n in (CANDLE_REQUIRED, CANDLE_REQUIRED + 1, CANDLE_REQUIRED + 2):  # no confirm: a closed bar
            assert parse_candle(row[:n], BTC, bar) == dataclasses.replace(candle, confirmed=True)
        for i in range(CANDLE_REQUIRED):  # a required field "" is refused, never read as 0
            with pytest.raises(ValueError):
                parse_candle([*row[:i], "", *row[i + 1:]], BTC, bar)


async def test_documented_candle_push_one_bad_row_only_the_bad_one_is_skipped() -> None:
    r = Router()
    try:
        row = doc("ws_candle5m")["example"]["data"][0]
        bad = [*row[:4], "abc", *row[5:]]
        arg = {"channel": "candle5m", "instId": BTC.inst_id}
        r.venue.router.on_push({"arg": arg, "data": [row, bad, [*row[:8], "1"]]}, "business")
        assert [(c.bar, c.close, c.confirmed) for c in r.events if isinstance(c, Candle)] == [
            ("5m", D("8548.26"), False), ("5m", D("8548.26"), True)]
    finally:
        await r.close()


def test_documented_mark_price_and_funding_rate_values() -> None:
    ws_mark = P.parse_mark_price(first("ws_mark_price"), BTC)
    assert ws_mark.price == D("0.1") and ws_mark.ts == datetime(2020, 8, 10, 2, 26, 23, 85000, tzinfo=UTC)
    assert P.parse_mark_price(first("rest_public_mark_price"), BTC).price == D("200")
    push = P.parse_funding_rate(first("ws_funding_rate"), BTC)
    assert push.rate == D("0.0001875391284828")
    assert push.next_funding_time == datetime(2023, 11, 23, 8, tzinfo=UTC)  # fundingTime: the coming settlement
    rest = P.parse_funding_rate(first("rest_public_funding_rate"), BTC)
    assert rest.rate == D("0.0000182221218054") and rest.next_funding_time == datetime(2025, 4, 2, 16, tzinfo=UTC)
    assert P.parse_funding_rate(first("ws_funding_rate", fundingTime=""), BTC).next_funding_time == \
        datetime(2023, 11, 23, 16, tzinfo=UTC)  # then nextFundingTime


async def test_mark_price_and_funding_rate_pushes_one_bad_only_the_bad_one_is_skipped() -> None:
    r = Router()
    try:
        good = on_btc("ws_funding_rate")
        out = await r.push("ws_funding_rate", [good, {**good, "fundingRate": "abc"}, {**good, "ts": "1700724675403"}])
        assert [e.rate for e in out if isinstance(e, FundingRate)] == [D("0.0001875391284828")] * 2
        assert [e.channel for e in out if isinstance(e, MalformedPush)] == ["funding-rate"]
        mark = on_btc("ws_mark_price")
        assert [e.price for e in await r.push("ws_mark_price", [mark], "public") if isinstance(e, MarkPrice)] == [D("0.1")]
        out = await r.push("ws_mark_price", [{**mark, "markPx": "abc"}], "public")
        assert [e.channel for e in out if isinstance(e, MalformedPush)] == ["mark-price"]
        out = await r.push("ws_mark_price", [{**mark, "markPx": "0.2"}], "public")
        assert [e.price for e in out if isinstance(e, MarkPrice)] == [D("0.2")]
    finally:
        await r.close()


def test_documented_values() -> None:
    update, fill = P.parse_order_push(first("ws_orders"), BTC)  # a maker sell fill, OKX fee -0.02522168
    assert fill is not None and update is not None
    assert fill.fee == D("0.02522168") and fill.fee_ccy == "USDT" and fill.fill_id == "242589207"
    assert fill.contracts == D("0.001") and fill.price == D("31527.1") and fill.fill_pnl == D("0.01")
    assert fill.liquidity is Liquidity.MAKER and fill.pos_side == "net"  # posSide "" (spot) is net
    assert fill.origin is Origin.EXTERNAL and update.avg_price == D("31527.1")  # clOrdId "": not ours
    assert update.state is OrderState.FILLED and update.filled_contracts == D("0.001")
    pos = P.parse_position(first("ws_positions"), BTC)
    assert pos.contracts == D("1") and pos.margin_mode == "isolated" and pos.position_key == "307173036051017730"
    assert pos.pos_side == "long" and pos.fee == D("-0.0001") and pos.realized_pnl == D("0.001")
    rest_pos = P.parse_position(first("rest_positions"), BTC)
    assert rest_pos.contracts == D("0.00190433573") and rest_pos.unrealized_pnl == D("-0.0000033452492717")
    assert rest_pos.fee is None and rest_pos.realized_pnl is None  # "" in the docs: unknown, not 0
    hist = P.parse_position_history(first("rest_positions_history"), BTC)
    assert hist.close_type == 1 and hist.realized_pnl == D("0.001") and hist.fee == D("-0.0001")
    assert hist.pnl == D("0.0011") and hist.pos_side == "long" and hist.closed_contracts == D("1")
    hfill = P.parse_fill_history(first("rest_fills_history"), BTC)
    assert hfill.fee == D("0.00000192834") and hfill.fee_ccy == "BTC" and hfill.fill_id == "744876980"
    assert hfill.liquidity is Liquidity.TAKER and hfill.fill_pnl == D("0")
    snapshot = first("ws_balance_and_position")  # the documented push is the initial snapshot
    assert P.parse_funding_signals(snapshot, BY_ID) == []
    funding = {**snapshot, "eventType": "funding_fee",
               "posData": [{**snapshot["posData"][0], "instId": BTC.inst_id}]}
    assert [s.symbol for s in P.parse_funding_signals(funding, BY_ID)] == [BTC.symbol]
    # "Only balData will be pushed if only the account balance changes" (cross funding): still a signal
    bal_only = {k: v for k, v in funding.items() if k != "posData"}
    assert [s.symbol for s in P.parse_funding_signals(bal_only, BY_ID)] == [None]
    assert P.parse_funding_bill(first("rest_bills_funding"), BTC).amount == D("-0.1")


def test_documented_trade_bill_is_no_funding_bill() -> None:
    """The docs' bills example is a trade bill (type 2): never journaled as funding, even on our swap."""
    trade_bill = first("rest_bills")
    assert trade_bill["type"] == "2" and trade_bill["balChg"] != "0"
    assert P.funding_bill_or_none(trade_bill, BY_ID) is None
    assert P.funding_bill_or_none({**trade_bill, "instId": BTC.inst_id}, BY_ID) is None
    funding = P.funding_bill_or_none(first("rest_bills_funding"), BY_ID)
    assert funding is not None and funding.amount == D("-0.1")
    # the hand-built funding bills carry exactly the documented bill's fields
    assert list(first("rest_bills_funding")) == list(trade_bill) == list(first("rest_bills_funding_isolated"))


def test_several_rest_items_one_bad_only_the_bad_one_is_skipped() -> None:
    good = first("rest_positions_history")
    bad = {**good, "posId": "bad", "type": "x"}
    recs = parse_each("positions-history", [good, bad, {**good, "posId": "2"}],
                      lambda i: P.parse_position_history(i, BTC))
    assert [r.position_key for r in recs] == ["452587086133239818", "2"]
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
        self.venue.router.sink = self.events.append

    async def push(self, name: str, data: list[Any], stream: str = "private") -> list[object]:
        arg = doc(name)["example"]["arg"]
        self.venue.router.on_push({"arg": arg, "data": data}, stream)
        await asyncio.sleep(0)  # whole-state channels are emitted after the burst
        await asyncio.sleep(0)
        out, self.events[:] = list(self.events), []
        return out

    async def close(self) -> None:
        await self.venue.close()


async def test_several_push_items_one_bad_only_the_bad_one_is_skipped() -> None:
    r = Router()
    try:
        good = on_btc("ws_orders")
        out = await r.push("ws_orders", [good, {**good, "tradeId": "242589208", "fillPx": "abc"},
                                         {**good, "tradeId": "242589209"}])
        fills = [e for e in out if isinstance(e, Fill)]
        assert [f.fill_id for f in fills] == ["242589207", "242589209"]
        assert [e.channel for e in out if isinstance(e, MalformedPush)] == ["orders"]
        assert sum(isinstance(e, OrderUpdate) for e in out) == 2
        assert await r.push("ws_balance_and_position", [first("ws_balance_and_position")]) == []  # snapshot
        snapshot = first("ws_balance_and_position")
        funding = {**snapshot, "eventType": "funding_fee",
                   "posData": [{**snapshot["posData"][0], "instId": BTC.inst_id}]}
        out = await r.push("ws_balance_and_position", [funding, {**funding, "posData": "bad"}])
        assert [type(e) for e in out] == [FundingSignal, MalformedPush]
    finally:
        await r.close()


# ------------------------------------------------------------------ issue items 1-7, 11


def test_item1_account_figures_come_from_the_settle_currency_not_the_usd_totals() -> None:
    raw = first("rest_account_balance")  # totalEq is the USD total of the whole account
    assert raw["totalEq"] == "55837.43556134779" and raw["upl"] == "0"
    acct = P.parse_account(raw, "USDT")
    assert acct is not None
    assert acct.equity == D("4992.890093622894")  # details[USDT].eq, not totalEq (USD, every currency)
    assert acct.available == D("4834.3170936228935")  # details[USDT].availEq
    assert acct.unrealized_pnl == D("-7.545600000000006")  # details[USDT].upl; the top-level "0" must not win
    push = P.parse_account(first("ws_account"), "USDT")
    assert push is not None and push.equity == D("4892.951170691435") and push.unrealized_pnl == D("-7.475800000000003")


def test_item2_incremental_account_push_leaves_absent_currency_unchanged() -> None:
    btc_only = {**first("ws_account"), "details": [{**first("ws_account")["details"][0], "ccy": "BTC"}]}
    assert P.parse_account(btc_only, "USDT") is None  # USDT absent: unchanged, not zero
    assert not P.account_mentions(btc_only, "USDT")


async def test_item2_router_emits_no_snapshot_for_a_push_without_the_settle_currency() -> None:
    r = Router()
    try:
        snapshot = first("ws_account")
        btc_only = {**snapshot, "details": [{**snapshot["details"][0], "ccy": "BTC"}]}
        out = await r.push("ws_account", [snapshot])
        assert [e.available for e in out if isinstance(e, AccountSnapshot)] == [D("4734.371190691435")]
        assert await r.push("ws_account", [btc_only]) == []
        both = await r.push("ws_account", [snapshot, btc_only])  # one burst: USDT must survive it
        assert [e.available for e in both if isinstance(e, AccountSnapshot)] == [D("4734.371190691435")]
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
    algo = first("ws_orders_algo")  # the documented push: a conditional algo with only a TP trigger
    assert P.algo_kind_of(algo) == "tp"
    algo_id = algo["algoId"]
    _, fill = P.parse_order_push(first("ws_orders", algoId=algo_id), BTC, {algo_id: P.algo_kind_of(algo)})
    assert fill is not None and fill.origin is Origin.TP
    trigger = {**algo, "ordType": "trigger"}  # the same algo as a plain trigger entry: no TP, no SL
    assert P.algo_kind_of(trigger) == P.OTHER_ALGO
    _, fill = P.parse_order_push(first("ws_orders", algoId=algo_id), BTC, {algo_id: P.algo_kind_of(trigger)})
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
        cross = on_btc("ws_positions", posId="1", mgnMode="cross", posSide="net", pos="2")
        isolated = on_btc("ws_positions", posId="2", mgnMode="isolated", posSide="net", pos="-1")
        out = await r.push("ws_positions", [cross, isolated, {**cross, "pos": "3"}])
        got = sorted((p.position_key, p.margin_mode, p.contracts) for p in out if isinstance(p, PositionPush))
        assert got == [("1", "cross", D("3")), ("2", "isolated", D("-1"))]
    finally:
        await r.close()


async def test_documented_positions_push_keeps_both_instruments_of_one_posid() -> None:
    """OKX's documented positions push holds two instruments under one posId: both must arrive."""
    items = doc("ws_positions")["example"]["data"]
    assert len({i["posId"] for i in items}) == 1 and len({i["instId"] for i in items}) == 2
    r = Router()
    try:
        for inst_id in (i["instId"] for i in items):
            inst = Instrument(symbol=inst_id, inst_id=inst_id, contract_size=D("10"), lot_size=D("1"),
                              min_size=D("1"), tick_size=D("0.01"), settle_ccy="ETH", base_ccy="ETH")
            r.venue.markets.by_symbol[inst.symbol] = inst
            r.venue.markets.by_id[inst_id] = inst
        out = await r.push("ws_positions", items)
        assert sorted(p.symbol for p in out if isinstance(p, PositionPush)) == ["ETH-USD-210430", "ETH-USD-SWAP"]
    finally:
        await r.close()


def test_item6_fill_without_fillfee_is_malformed_not_fee_zero() -> None:
    raw = on_btc("ws_orders")
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
        raw = on_btc("ws_orders")
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


def test_position_close_algos_give_the_take_profit_and_stop_loss() -> None:
    """OKX's documented positions push lists the position's close algos (closeOrderAlgo): the
    triggers of the one that closes the largest share are the position's TP/SL."""
    item = dict(doc("ws_positions")["example"]["data"][0])
    item["closeOrderAlgo"] = [
        {"algoId": "1", "slTriggerPx": "58000", "tpTriggerPx": "", "closeFraction": "0.4"},
        {"algoId": "2", "slTriggerPx": "57000", "tpTriggerPx": "65000", "closeFraction": "0.6"},
        "not an object",
    ]
    push = P.parse_position(item, BTC)
    assert (push.take_profit, push.stop_loss) == (D("65000"), D("57000"))
    bare = P.parse_position({**item, "closeOrderAlgo": []}, BTC)
    assert (bare.take_profit, bare.stop_loss) == (None, None)
