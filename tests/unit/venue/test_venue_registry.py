"""The venue registry: the one list of venues, and the one place a venue is built."""
from __future__ import annotations

import pytest

from core.settings.config import SUPPORTED_VENUES, ExchangeSettings, Settings
from core.settings.demo import DEMO_KEY, DEMO_PASSPHRASE, DEMO_SECRET
from core.support.errors import PerpdeskError
from core.venue.base import VenueError, VenueErrorKind
from core.venue.factory import make_venue
from core.venue.registry import VENUES, venue_entry


def test_config_validates_against_the_registry() -> None:
    assert SUPPORTED_VENUES == tuple(VENUES) and set(VENUES) >= {"sim", "okx"}


def test_unknown_venue_is_a_config_venue_error() -> None:
    with pytest.raises(VenueError) as err:
        venue_entry("binance")
    assert err.value.kind is VenueErrorKind.CONFIG and err.value.kind == "config"
    assert isinstance(err.value, PerpdeskError) and err.value.exit_code == 2
    assert '"sim"' in err.value.message and '"okx"' in err.value.message


def test_venue_error_keeps_the_message_only_call_style() -> None:
    plain = VenueError("something failed")
    assert plain.kind is VenueErrorKind.UNKNOWN and str(plain) == "something failed"
    assert VenueError("late", "timeout").kind is VenueErrorKind.TIMEOUT


async def test_make_venue_for_sim_uses_the_demo_account_defined_once() -> None:
    settings = Settings(exchange=ExchangeSettings(venue="sim", url="http://127.0.0.1:9", symbols=("BTC/USDT:USDT",)))
    venue = make_venue(settings)
    try:
        assert venue._creds == (DEMO_KEY, DEMO_SECRET, DEMO_PASSPHRASE)  # type: ignore[attr-defined]
        assert venue.address == "http://127.0.0.1:9"
    finally:
        await venue.close()


async def test_make_venue_takes_an_exchange_override() -> None:
    settings = Settings(exchange=ExchangeSettings(venue="sim"))
    with pytest.raises(VenueError, match="needs the simulator's url"):
        make_venue(settings)
    venue = make_venue(settings, ExchangeSettings(venue="sim", url="http://127.0.0.1:9"))
    await venue.close()
