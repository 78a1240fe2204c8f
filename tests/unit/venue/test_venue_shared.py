"""The rules every venue shares live once (core/venue/streams.py, ccxt_forms.py, writes.py): the
OKX and Bybit streams keep their connection the same way, and an order's attached TP/SL, a limit
order's price and a ccxt error's body are read and written by the same functions."""
from __future__ import annotations

from decimal import Decimal

import pytest

from core.events import PlaceOrder
from core.model import OrderSide, OrderType
from core.venue.base import VenueError, VenueErrorKind
from core.venue.bybit_stream import BybitStream
from core.venue.ccxt_forms import attached_tp_sl, error_body, limit_price
from core.venue.okx_stream import OkxStream
from core.venue.streams import Stream


@pytest.mark.parametrize("part", ["run", "stop", "_status", "_keepalive", "pump", "connector"])
def test_both_exchange_streams_keep_their_connection_by_the_one_stream_life(part: str) -> None:
    assert getattr(OkxStream, part) is getattr(Stream, part)
    assert getattr(BybitStream, part) is getattr(Stream, part)


def test_a_limit_order_without_a_positive_price_is_refused_before_it_is_sent() -> None:
    for price in (None, Decimal(0), Decimal("-1")):
        with pytest.raises(VenueError) as refused:
            limit_price(PlaceOrder("BTC/USDT:USDT", OrderSide.BUY, Decimal(1), OrderType.LIMIT, price))
        assert refused.value.kind is VenueErrorKind.BAD_REQUEST
        assert "BTC/USDT:USDT" in str(refused.value)
    assert limit_price(PlaceOrder("BTC/USDT:USDT", OrderSide.BUY, Decimal(1), OrderType.LIMIT,
                                  Decimal("60000.50"))) == "60000.5"
    assert limit_price(PlaceOrder("BTC/USDT:USDT", OrderSide.BUY, Decimal(1), price=Decimal(5))) is None


def test_attached_take_profit_and_stop_loss_are_plain_decimal_strings_without_exponent_or_trailing_zeros() -> None:
    order = PlaceOrder("BTC/USDT:USDT", OrderSide.BUY, Decimal(1), take_profit=Decimal("1E+5"),
                       stop_loss=Decimal("55000.10"))
    assert attached_tp_sl(order) == {"takeProfit": {"triggerPrice": "100000"},
                                     "stopLoss": {"triggerPrice": "55000.1"}}
    assert attached_tp_sl(PlaceOrder("BTC/USDT:USDT", OrderSide.BUY, Decimal(1))) == {}


def test_the_exchange_body_of_a_ccxt_error_or_none() -> None:
    assert error_body(Exception('okx {"code":"50011","msg":"Too Many Requests","data":[]}')) == {
        "code": "50011", "msg": "Too Many Requests", "data": []}
    assert error_body(Exception('bybit {"retCode":10006,"retMsg":"Too many visits!"}'))["retCode"] == 10006
    assert error_body(Exception("bybit GET https://api.bybit.com/v5/... 502 Bad Gateway")) is None
    assert error_body(Exception('okx {"code": truncated')) is None


def _offered(stream: Stream) -> list[str]:
    """The extensions the stream's opening handshake would offer (built, never sent)."""
    from websockets.uri import parse_uri

    protocol = stream.connector().protocol_factory(parse_uri(stream.url)).protocol
    return [factory.name for factory in protocol.available_extensions or []]


@pytest.mark.parametrize("url", ["wss://ws.okx.com:8443/ws/v5/public", "wss://stream.bybit.com/v5/public/linear",
                                 "ws://10.0.0.7:8080/ws/v5/public"])
async def test_a_remote_exchange_is_offered_compression(url: str) -> None:
    for stream in (OkxStream("public", url, [], lambda _: None, lambda _: None),
                   BybitStream("public", url, [], lambda _: None, lambda _: None)):
        assert _offered(stream) == ["permessage-deflate"]


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8080/ws/v5/public", "ws://localhost:8080/ws/v5/private",
                                 "ws://[::1]:8080/v5/public/linear", "ws://127.0.0.2:9/ws"])
async def test_a_loopback_endpoint_is_offered_no_compression(url: str) -> None:
    for stream in (OkxStream("public", url, [], lambda _: None, lambda _: None),
                   BybitStream("public", url, [], lambda _: None, lambda _: None)):
        assert _offered(stream) == []
