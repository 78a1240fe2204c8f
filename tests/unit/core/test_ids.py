"""Milliseconds and position ids (core/ids.py): exact both ways over every time a datetime holds.

A life's id carries its opening millisecond and three parts of the product compare it with the
exchange's stamps, so a conversion that loses one millisecond gives one life two ids.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.ids import (
    life_seq,
    ms_from_iso,
    ms_from_utc,
    parse_position_id,
    pos_side_of,
    position_id_for,
    split_position_id,
    utc_from_ms,
)

FIRST_MS = ms_from_utc(datetime.min.replace(tzinfo=UTC))
LAST_MS = ms_from_utc(datetime.max.replace(tzinfo=UTC))
every_ms = st.integers(min_value=FIRST_MS, max_value=LAST_MS)


def test_the_range_is_every_datetime() -> None:
    assert utc_from_ms(FIRST_MS) == datetime.min.replace(tzinfo=UTC)
    assert utc_from_ms(LAST_MS) == datetime.max.replace(tzinfo=UTC, microsecond=999000)


@given(every_ms)
def test_ms_of_utc_of_ms_is_the_same_ms(ms: int) -> None:
    assert ms_from_utc(utc_from_ms(ms)) == ms
    assert utc_from_ms(str(ms)) == utc_from_ms(ms)


@given(st.datetimes(timezones=st.just(UTC)))
def test_ms_floors_a_time_to_its_millisecond(ts: datetime) -> None:
    back = utc_from_ms(ms_from_utc(ts))
    assert back <= ts < back + timedelta(milliseconds=1)


@given(every_ms)
def test_iso_text_as_the_journal_writes_it_gives_the_same_ms(ms: int) -> None:
    ts = utc_from_ms(ms)
    assert ms_from_iso(ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")) == ms
    assert ms_from_iso(ts.replace(tzinfo=None).isoformat()) == ms  # naive counts as UTC


def test_a_time_before_1970_floors_instead_of_rounding_toward_zero() -> None:
    ts = datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC)
    assert ms_from_utc(ts) == -1
    assert int(ts.timestamp() * 1000) == 0  # the float conversion this replaces


@given(st.sampled_from(["BTC/USDT:USDT", "ETH-USDT-SWAP", "X"]),
       st.sampled_from(["net", "long", "short"]),
       st.integers(min_value=0, max_value=LAST_MS), st.integers(min_value=1, max_value=10_000))
def test_position_id_splits_back_into_what_built_it(symbol: str, pos_side: str, ms: int,
                                                    seq: int) -> None:
    pid = position_id_for(symbol, pos_side, utc_from_ms(ms), seq)
    assert split_position_id(pid) == (symbol, pos_side, ms, seq)
    assert parse_position_id(pid) == (symbol, pos_side, utc_from_ms(ms))
    assert life_seq(pid) == seq
    assert pos_side_of(pid) == pos_side


@pytest.mark.parametrize("bad", ["", "BTC", "BTC#net", "BTC#net#abc", "BTC#net#12.x", "BTC#net#12.1"])
def test_what_is_not_an_id_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        split_position_id(bad)
    assert life_seq(bad) == 1


def test_a_sequence_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        position_id_for("BTC", "net", utc_from_ms(0), 0)


def test_pos_side_of_text_that_is_no_id_is_net() -> None:
    assert pos_side_of("legacy") == "net"
