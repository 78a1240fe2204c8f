"""Candles: OKX's documented rows parsed to ``Candle`` (REST and the WS candle channel through the
venue's push path), rows no exchange sends refused, and the venue against the simulator: paged
REST history oldest first, live one-minute candles published by the engine."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from core.events import Candle
from core.model import Instrument
from core.settings.config import ExchangeSettings
from core.venue import OkxVenue
from core.venue.okx_candles import bar_of_channel, parse_candle
from core.venue.okx_parse import OkxParseError
from tests.helpers.engine_helpers import BTC, BTC_ID
from tests.helpers.paths import FIXTURES

DOCS = FIXTURES / "okx_docs"
INST = Instrument(symbol=BTC, inst_id=BTC_ID, contract_size=D("0.01"), lot_size=D("0.01"),
                  min_size=D("0.01"), tick_size=D("0.1"), base_ccy="BTC")


def example(name: str) -> dict[str, Any]:
    return json.loads((DOCS / f"{name}.json").read_text())["example"]


def test_documented_rest_rows_newest_first_open_and_closed() -> None:
    rows = example("market_candles")["data"]
    open_bar, closed_bar = (parse_candle(r, INST, "1m") for r in rows)
    assert open_bar == Candle(symbol=BTC, bar="1m", ts=datetime(2020, 8, 10, 2, 26, 23, 85000, tzinfo=UTC),
                              open=D("3.721"), high=D("3.743"), low=D("3.677"), close=D("3.708"),
                              volume=D("8422410"), confirmed=False)
    assert closed_bar.confirmed and closed_bar.close == D("3.72") and closed_bar.low == D("3.494")
    (history,) = [parse_candle(r, INST, "1H") for r in example("market_history_candles")["data"][:1]]
    assert history.bar == "1H" and history.confirmed and history.volume == D("8422410")


def test_rows_no_exchange_sends_are_refused_by_field() -> None:
    row = ["1597026383085", "3.721", "3.743", "3.677", "3.708", "8422410", "0", "0", "1"]
    assert parse_candle(row[:6], INST, "1m").confirmed  # an old 6/7-field row: a closed bar
    for bad, needle in [
        (row[:5], "at least 6 fields"),
        ([*row[:2], "3.6", *row[3:]], "high/low do not contain"),
        (["", *row[1:]], "ts must be milliseconds"),
        ([*row[:8], "2"], 'confirm must be "0" or "1"'),
        ([*row[:1], "0", *row[2:]], "prices must be > 0"),
        ({"ts": "1"}, "array"),
    ]:
        with pytest.raises(OkxParseError, match=needle):
            parse_candle(bad, INST, "1m")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_candle([*row[:4], "abc", *row[5:]], INST, "1m")


def test_candle_channels() -> None:
    assert [bar_of_channel(c) for c in ("candle1m", "candle1H", "candle6Hutc", "candle7m", "orders")] == [
        "1m", "1H", "6Hutc", None, None]


async def test_documented_ws_push_reaches_the_sink_as_candles_a_bad_row_alone_skipped() -> None:
    venue = OkxVenue(ExchangeSettings(venue="sim", url="http://127.0.0.1:9", symbols=(BTC,)), None)
    venue.markets.by_symbol, venue.markets.by_id = {BTC: INST}, {BTC_ID: INST}
    events: list[object] = []
    venue.router.sink = events.append
    try:
        push = example("ws_candle1m")
        row = push["data"][0]
        venue.router.on_push({"arg": {"channel": "candle1m", "instId": BTC_ID},
                        "data": [row, [*row[:2], "1", *row[3:]], [*row[:8], "1"]]}, "business")
        assert [(c.close, c.confirmed) for c in events] == [(D("8548.26"), False), (D("8548.26"), True)]  # type: ignore[attr-defined]
        assert all(isinstance(c, Candle) and c.symbol == BTC and c.bar == "1m" for c in events)
        events.clear()
        venue.router.on_push({**push, "data": [row]}, "business")  # the documented arg: another instrument
        assert events == []
    finally:
        await venue.close()
