"""Bybit v5 parsers (core/venue/bybit_parse.py) over the Bybit face of the simulator and over Bybit's
documented examples (tests/fixtures/bybit_docs)."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

from core.events import MalformedPush
from core.model import Fill, Origin, PosSide
from core.settings.config import ExchangeSettings
from core.venue import bybit_parse as bp
from core.venue.bybit import BybitVenue
from tests.helpers import paths
from tests.helpers.bybit_parse import BTC

FIXTURES = paths.FIXTURES / "bybit_docs"


def example(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())["example"]


def test_documented_examples_parse() -> None:
    (ws_exec,) = example("ws_execution.json")["data"]
    f = bp.parse_execution(ws_exec, BTC)
    assert f.fill_id == ws_exec["execId"] and f.fee == D("26.3725275") and f.contracts == D("0.5")
    assert f.fill_pnl == D("0.05") and f.side == "sell" and f.origin is Origin.EXTERNAL
    (pos,) = example("ws_position.json")["data"]
    p = bp.parse_position(pos, BTC)
    assert p.pos_side is PosSide.SHORT and p.contracts == 0 and p.entry_price is None and p.take_profit is None
    (rec,) = example("position_closed_pnl.json")["result"]["list"]
    c = bp.parse_closed_pnl(rec, BTC)
    assert c.closed_pnl == D("-47.4065323") and c.open_fee is None and c.fill_count == 4
    (wallet,) = example("ws_wallet.json")["data"]
    assert bp.parse_wallet(wallet, "USDT", 0) is None  # the example holds BTC only
    w = bp.parse_wallet(wallet, "BTC", 1700034722104)
    assert w is not None
    # the coin's own equity and uPnL; available is the unified account's shared margin (USD)
    assert (w.equity, w.unrealized_pnl, w.available, w.ccy) == (
        D("0.00102964"), D("0"), D("9556.6056555"), "BTC")
    assert w.ts == datetime(2023, 11, 15, 7, 52, 2, 104000, tzinfo=UTC)


def test_a_bad_push_item_is_skipped_alone_and_reported() -> None:
    v = BybitVenue(ExchangeSettings(venue="bybit", url="http://127.0.0.1:9", symbols=("BTC/USDT:USDT",)), None)
    v.markets.by_symbol, v.markets.by_id = {BTC.symbol: BTC}, {"BTCUSDT": BTC}
    events: list[object] = []
    v.sink = events.append
    (good,) = example("ws_execution.json")["data"]
    bad = {**good, "execId": "bad-1", "execQty": "lots"}
    v.on_push("private", {"topic": "execution", "data": [bad, good]})
    assert [type(e) for e in events] == [MalformedPush, Fill]
    assert isinstance(events[1], Fill) and events[1].fill_id == good["execId"]
