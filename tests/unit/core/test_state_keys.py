"""One last-write-wins rule (core/service/state_keys.py) for the service's per-console queues and the
console's feed buffer: what one coalesces the other coalesces, and append-only facts never are."""
from __future__ import annotations

from decimal import Decimal

import console.feed
import core.service.server
from console.feed import FeedBuffer
from core.events import FundingRate, MarkPrice, Notice, NoticeLevel
from core.service.state_keys import state_key
from tests.helpers.console_helpers import BTC, ETH, T0, close, fill, funding, snapshot


def test_the_server_and_the_feed_coalesce_by_the_one_rule_in_core() -> None:
    assert core.service.server.state_key is state_key
    assert console.feed.state_key is state_key


def test_a_newer_state_replaces_an_older_one_of_the_same_key_only() -> None:
    assert state_key(snapshot(BTC, mark="1")) == state_key(snapshot(BTC, mark="2"))
    assert state_key(snapshot(BTC)) != state_key(snapshot(ETH))
    assert state_key(MarkPrice(BTC, Decimal("1"), T0)) != state_key(MarkPrice(ETH, Decimal("1"), T0))
    assert state_key(MarkPrice(BTC, Decimal("1"), T0)) != state_key(snapshot(BTC))


def test_fills_closes_funding_payments_and_notices_are_never_coalesced() -> None:
    for fact in (fill(1), close(1), funding(1), Notice(NoticeLevel.INFO, "hello")):
        assert state_key(fact) is None


def test_a_funding_rate_is_the_latest_per_swap_and_the_feed_keeps_it() -> None:
    """A rate says what funding is now: the server sends a slow console only the latest per
    symbol, and the feed keeps that latest one too (it dropped rates before the rule was shared)."""
    old = FundingRate(BTC, Decimal("0.0001"), None, T0)
    new = FundingRate(BTC, Decimal("0.0002"), None, T0)
    eth = FundingRate(ETH, Decimal("-0.0001"), None, T0)
    assert state_key(old) == state_key(new) == ("rate", BTC)
    feed = FeedBuffer()
    for event in (old, eth, new):
        feed.push(event)
    states = feed.drain().states
    assert states[("rate", BTC)] is new
    assert states[("rate", ETH)] is eth
