"""OKX dict -> domain parsing: exact decimals, fee signs, contracts vs coins, and who caused what.

Fixtures under tests/fixtures/okx are pushes and REST replies recorded from the simulator in
OKX's own shape; every expected value below was checked by hand (noted next to the assert).
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.model import Instrument, Liquidity, OrderSide, OrderState, Origin, utc_from_ms
from core.venue import okx_parse as P
from core.venue.okx import VenueError, new_client_order_id, okx_message, ws_base_url
from core.venue.okx_stream import login_args
from tests.helpers.paths import FIXTURES

D = Decimal
FIX = FIXTURES / "okx"
BTC = Instrument(symbol="BTC/USDT:USDT", inst_id="BTC-USDT-SWAP", contract_size=D("0.01"),
                 lot_size=D("0.01"), min_size=D("0.01"), tick_size=D("0.1"), base_ccy="BTC")


def item(name: str, **over: Any) -> dict[str, Any]:
    """First data item of a fixture, with field overrides."""
    return {**json.loads((FIX / name).read_text())["data"][0], **over}


def items(name: str) -> list[dict[str, Any]]:
    return json.loads((FIX / name).read_text())["data"]


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


# ------------------------------------------------------------------ orders channel


def test_fill_push_exact_values_and_fee_sign() -> None:
    update, fill = P.parse_order_push(item("orders_fill.json"), BTC)
    assert fill is not None and update is not None
    assert fill.fill_id == "1795468639749000003" and fill.order_id == "1795468639749000001"
    assert fill.side is OrderSide.BUY
    assert fill.contracts == D("5") and fill.coins == D("0.05")  # 5 contracts x 0.01 BTC
    assert fill.price == D("60003.2")
    assert fill.fee == D("1.50008")  # OKX fillFee -1.50008 (paid) -> cost +1.50008 = 0.05*60003.2*0.0005
    assert fill.fee_ccy == "USDT" and fill.liquidity is Liquidity.TAKER
    assert fill.origin is Origin.STRATEGY  # clOrdId pds...
    assert fill.reduce_only is False and fill.pos_side == "net" and fill.category == "normal"
    assert fill.fill_pnl == D("0") and fill.liq_penalty == D("0")
    assert ms(fill.ts) == 1795468640288 and fill.ts.tzinfo is not None
    assert update.state is OrderState.FILLED and update.filled_contracts == D("5")
    assert update.avg_price == D("60003.2") and update.price is None  # market: px ""
    assert update.origin is Origin.STRATEGY and update.order_type == "market"


def test_maker_rebate_is_a_negative_cost() -> None:
    _, fill = P.parse_order_push(item("orders_fill.json", execType="M", fillFee="0.12"), BTC)
    assert fill is not None and fill.liquidity is Liquidity.MAKER and fill.fee == D("-0.12")


def test_order_without_trade_is_only_a_state_change() -> None:
    live = item("orders_fill.json", state="live", tradeId="", fillSz="", fillPx="", fillFee="",
                fillTime="", accFillSz="0", avgPx="", ordType="limit", px="59000.5")
    update, fill = P.parse_order_push(live, BTC)
    assert fill is None and update is not None
    assert update.state is OrderState.PLACED and update.price == D("59000.5")
    assert update.filled_contracts == D("0") and update.avg_price is None
    canceled, _ = P.parse_order_push({**live, "state": "canceled"}, BTC)
    partial, _ = P.parse_order_push({**live, "state": "partially_filled"}, BTC)
    assert canceled is not None and canceled.state is OrderState.CANCELED
    assert partial is not None and partial.state is OrderState.PARTIALLY_FILLED
    unknown, _ = P.parse_order_push({**live, "state": "something_new"}, BTC)
    assert unknown is None


def test_tp_fill_uses_remembered_algo_kind_else_trigger_hint() -> None:
    raw = item("orders_tp_fill.json")
    _, fill = P.parse_order_push(raw, BTC, {"1795468639749000005": "tp"})
    assert fill is not None and fill.origin is Origin.TP and fill.algo_id == "1795468639749000005"
    assert fill.reduce_only is True and fill.fill_pnl == D("49.68")  # (60996.8-60003.2)*5*0.01
    assert fill.fee == D("1.52492")
    _, sl = P.parse_order_push(raw, BTC, {"1795468639749000005": "sl"})
    assert sl is not None and sl.origin is Origin.SL
    _, hinted = P.parse_order_push({**raw, "tpTriggerPx": "61000"}, BTC)
    assert hinted is not None and hinted.origin is Origin.TP
    _, unknown = P.parse_order_push(raw, BTC)  # no hint at all: never guessed to be a stop-loss
    assert unknown is not None and unknown.origin is Origin.EXTERNAL


def test_orders_algo_push_tells_which_side_fired() -> None:
    algo = item("orders_algo_effective.json")
    assert algo["ordType"] == "oco" and P.algo_kind_of(algo) == "tp"  # actualSide
    assert P.algo_kind_of({**algo, "actualSide": ""}) is None  # both triggers set: undecided
    assert P.algo_kind_of({**algo, "actualSide": "", "tpTriggerPx": ""}) == "sl"


def test_liquidation_fill() -> None:
    update, fill = P.parse_order_push(item("orders_liquidation.json"), BTC)
    assert fill is not None and update is not None
    assert fill.origin is Origin.LIQUIDATION and update.origin is Origin.LIQUIDATION
    assert fill.category == "full_liquidation" and fill.side is OrderSide.BUY
    assert fill.fill_pnl == D("-10504.8")  # (60996.8-68000) x 150 x 0.01, short
    assert fill.liq_penalty == D("0") and fill.fee == D("0")
    _, pen = P.parse_order_push(item("orders_liquidation.json", liqPenalty="-12.5"), BTC)
    assert pen is not None and pen.liq_penalty == D("12.5")  # OKX negative = paid -> cost


@pytest.mark.parametrize(
    ("category", "algo_id", "cl_id", "kind", "expected"),
    [
        ("full_liquidation", "", "pdcX", None, Origin.LIQUIDATION),
        ("partial_liquidation", "123", "", "tp", Origin.LIQUIDATION),
        ("adl", "", "", None, Origin.ADL),
        ("normal", "123", "pdcX", "tp", Origin.TP),
        ("normal", "123", "", "sl", Origin.SL),
        ("normal", "", "pdc0aB", None, Origin.CONSOLE),
        ("normal", "", "pds0aB", None, Origin.STRATEGY),
        ("normal", "", "e847386590ce4dBCabc", None, Origin.EXTERNAL),
        ("normal", "", "", None, Origin.EXTERNAL),
    ],
)
def test_classify_origin(category: str, algo_id: str, cl_id: str, kind: str | None, expected: Origin) -> None:
    assert P.classify_origin(category, algo_id, cl_id, kind) is expected


def test_hedge_mode_fill_keeps_pos_side() -> None:
    _, fill = P.parse_order_push(item("orders_fill.json", posSide="long"), BTC)
    assert fill is not None and fill.pos_side == "long"


# ------------------------------------------------------------------ fills-history


def test_fills_history_items() -> None:
    by_trade = {i["tradeId"]: i for i in items("fills_history.json")}
    console = P.parse_fill_history(by_trade["1795468639749000011"], BTC)
    assert console.origin is Origin.CONSOLE and console.side is OrderSide.SELL
    assert console.contracts == D("150") and console.coins == D("1.5")
    assert console.fee == D("45.7476")  # fee -45.7476 -> cost; = 1.5 x 60996.8 x 0.0005
    assert console.price == D("60996.8") and ms(console.ts) == 1795468641399
    liq_raw = by_trade["1795468639749000014"]
    assert P.parse_fill_history(liq_raw, BTC).origin is Origin.EXTERNAL  # nothing says otherwise
    enriched = P.parse_fill_history({**liq_raw, "category": "full_liquidation"}, BTC)
    assert enriched.origin is Origin.LIQUIDATION and enriched.fill_pnl == D("-10504.8")
    tp = P.parse_fill_history({**by_trade["1795468639749000008"], "algoId": "77"}, BTC, "tp")
    assert tp.origin is Origin.TP and tp.algo_id == "77"


@pytest.mark.parametrize(("sub_type", "origin"), [("104", Origin.LIQUIDATION), ("101", Origin.LIQUIDATION),
                                                   ("126", Origin.ADL), ("1", Origin.EXTERNAL)])
def test_fills_history_subtype_implies_category(sub_type: str, origin: Origin) -> None:
    raw = {**items("fills_history.json")[0], "subType": sub_type}
    assert P.parse_fill_history(raw, BTC).origin is origin


# ------------------------------------------------------------------ positions, account, prices


def test_position_short_and_flat() -> None:
    pos = P.parse_position(item("positions_short.json"), BTC)
    assert pos.symbol == BTC.symbol and pos.pos_side == "net"
    assert pos.contracts == D("-150") and BTC.to_coins(pos.contracts) == D("-1.5")
    assert pos.entry_price == D("60996.8") and pos.mark_price == D("61000")
    assert pos.unrealized_pnl == D("-4.8")  # (60996.8-61000) x 1.5
    assert pos.fee == D("-45.7476") and pos.realized_pnl == D("-45.7476")  # OKX signs kept
    assert pos.liq_price == D("67394.3") and pos.leverage == D("10") and pos.margin_mode == "cross"
    assert pos.position_key == "1795468639749000002" and pos.created_at is not None
    flat = P.parse_position(item("positions_flat.json"), BTC)
    assert flat.contracts == D("0") and flat.entry_price is None and flat.liq_price is None


def test_account_snapshot() -> None:
    acct = P.parse_account(item("account.json"), "USDT")
    assert acct.equity == D("9995.8074") and acct.available == D("845.8074")
    assert acct.unrealized_pnl == D("-4.8") and acct.ccy == "USDT"
    raw = item("account.json")
    raw["details"] = [{**raw["details"][0], "availEq": "", "availBal": "800.5"}]
    assert P.parse_account(raw, "USDT").available == D("800.5")
    raw["details"][0]["availEq"] = "0"
    assert P.parse_account(raw, "USDT").available == D("0")


def test_mark_price_and_funding_rate() -> None:
    mark = P.parse_mark_price(item("mark_price.json"), BTC)
    assert mark.price == D("60000") and mark.symbol == BTC.symbol
    rate = P.parse_funding_rate(item("funding_rate.json"), BTC)
    assert rate.rate == D("0.000217") and rate.next_funding_time is not None
    assert ms(rate.next_funding_time) == 1795497439749


def test_mark_price_time_is_the_exact_millisecond_and_now_without_one() -> None:
    # the mark's time is read without utc_from_ms (every push): it must be the same instant
    base = item("mark_price.json")
    for stamp in ("0", "1", "999", "1597026383085", "1795470128613", "1795470128999", "4102444799999"):
        assert P.parse_mark_price({**base, "ts": stamp}, BTC).ts == utc_from_ms(stamp)
    before = datetime.now(UTC)
    for missing in ("", None):
        ts = P.parse_mark_price({**base, "ts": missing}, BTC).ts
        assert before <= ts <= datetime.now(UTC)
    with pytest.raises(ValueError):
        P.parse_mark_price({**base, "ts": "12x"}, BTC)


def test_funding_signal_only_for_funding_fee_events() -> None:
    raw = item("balance_and_position_funding.json")
    signals = P.parse_funding_signals(raw, {BTC.inst_id: BTC})
    assert [s.symbol for s in signals] == [BTC.symbol] and ms(signals[0].ts) == 1795468640592
    assert P.parse_funding_signals({**raw, "posData": []}, {BTC.inst_id: BTC})[0].symbol is None
    assert P.parse_funding_signals({**raw, "eventType": "filled"}, {BTC.inst_id: BTC}) == []


# ------------------------------------------------------------------ history endpoints


def test_funding_bill() -> None:
    bill = P.parse_funding_bill(item("bills_funding.json"), BTC)
    assert bill.bill_id == "1795468639749000006" and bill.amount == D("-0.3")  # paid: 5 x 0.01 x 60000 x 0.0001
    assert bill.position_contracts == D("5") and bill.mark_price == D("60000")
    assert bill.rate is None and bill.ccy == "USDT" and ms(bill.ts) == 1795468640592
    assert P.parse_funding_bill(item("bills_funding.json", fundingRate="0.0001"), BTC).rate == D("0.0001")


def test_positions_history_identity() -> None:
    liq, full = (P.parse_position_history(i, BTC) for i in items("positions_history.json"))
    assert liq.close_type == 3 and liq.direction == "short" and liq.closed_contracts == D("150")
    assert liq.realized_pnl == liq.pnl + liq.fee + liq.funding_fee + liq.liq_penalty == D("-10550.5476")
    assert full.close_type == 2 and full.open_avg_price == D("60003.2") and full.close_avg_price == D("60996.8")
    assert full.pnl == D("49.68") and full.fee == D("-3.025") and full.funding_fee == D("-0.3")
    assert full.realized_pnl == full.pnl + full.fee + full.funding_fee + full.liq_penalty == D("46.355")
    assert full.created_at < full.updated_at


# ------------------------------------------------------------------ markets, ids, errors, urls


def test_instrument_from_market_uses_okx_strings() -> None:
    info = {"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctMult": "1", "lotSz": "0.01", "minSz": "0.01",
            "tickSz": "0.1", "settleCcy": "USDT"}
    inst = P.instrument_from_market({"symbol": "BTC/USDT:USDT", "base": "BTC", "contractSize": 0.01, "info": info})
    assert inst == BTC
    assert inst.to_contracts(D("0.0153")) == D("1.53")  # the float trap: 0.0153/0.01 -> 1.5299999...
    multi = P.instrument_from_market({"symbol": "X/USDT:USDT", "info": {**info, "ctVal": "0.1", "ctMult": "10"}})
    assert multi.contract_size == D("1")


def test_client_order_ids() -> None:
    console, strategy = new_client_order_id(Origin.CONSOLE), new_client_order_id(Origin.STRATEGY)
    assert console.startswith("pdc") and strategy.startswith("pds")
    assert len(console) == 32 and console.isalnum() and console != new_client_order_id(Origin.CONSOLE)
    assert P.classify_origin("normal", "", console, None) is Origin.CONSOLE


def test_okx_message_from_ccxt_error() -> None:
    body = '{"code":"1","data":[{"clOrdId":"","ordId":"","sCode":"51008","sMsg":"Order failed. Insufficient USDT margin in account"}],"msg":"All operations failed"}'
    assert okx_message(Exception("okx " + body)) == "Order failed. Insufficient USDT margin in account (OKX 51008)"
    assert okx_message(Exception('okx {"code":"50113","msg":"Invalid Sign","data":[]}')) == "Invalid Sign (OKX 50113)"
    assert okx_message(Exception("okx plain words")) == "plain words"


def test_ws_urls() -> None:
    assert ws_base_url("http://127.0.0.1:8765", False) == "ws://127.0.0.1:8765/ws/v5"
    assert ws_base_url("https://sim.example:443/", False) == "wss://sim.example:443/ws/v5"
    assert ws_base_url(None, False) == "wss://ws.okx.com:8443/ws/v5"
    assert ws_base_url(None, True) == "wss://wspap.okx.com:8443/ws/v5"


def test_ws_login_signature_matches_openssl() -> None:
    # printf '1700000000GET/users/self/verify' | openssl dgst -sha256 -hmac perpdesk-demo-secret -binary | base64
    args = login_args("perpdesk-demo", "perpdesk-demo-secret", "perpdesk-demo", ts=1700000000)
    assert args == {"apiKey": "perpdesk-demo", "passphrase": "perpdesk-demo", "timestamp": "1700000000",
                    "sign": "rWsoXqzq6Js6mrswfDZOIu8nTNmLOuh5l4cUYvErAeE="}


def test_venue_settings_errors() -> None:
    from core.venue import OkxVenue

    class Ex:
        def __init__(self, venue: str, url: str | None) -> None:
            self.venue, self.url, self.sandbox, self.symbols = venue, url, False, ("BTC/USDT:USDT",)

    with pytest.raises(VenueError, match='unsupported \\[exchange\\] venue "binance"'):
        OkxVenue(Ex("binance", None), None)
    with pytest.raises(VenueError, match="needs the simulator's url"):
        OkxVenue(Ex("sim", None), None)


def test_parse_never_uses_float() -> None:
    _, fill = P.parse_order_push(item("orders_fill.json"), BTC)
    assert fill is not None
    for value in (fill.contracts, fill.price, fill.fee, fill.fill_pnl):
        assert type(value) is Decimal
