"""Building the venue a configuration names: the registry's entry, the credentials, the adapter.

Above both ``core.settings.config`` (settings, credentials) and ``core.venue.registry`` (the names config
validates against), so neither of those imports the other.
"""
from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

from core.settings.config import ExchangeSettings, Settings, load_credentials
from core.venue.base import Venue
from core.venue.registry import venue_entry


def make_venue(settings: Settings, exchange: ExchangeSettings | None = None) -> Venue:
    """The venue of ``settings`` (or of ``exchange``, e.g. pointed at a simulator started just now).

    Credentials come from ``core.settings.config.load_credentials`` (the demo account for a demo venue,
    else the environment); ConfigError when they are missing, VenueError when the venue cannot be
    built. Nothing is connected yet: call ``connect()``.
    """
    if exchange is not None:
        settings = replace(settings, exchange=exchange)
    entry = venue_entry(settings.exchange.venue)
    module, _, attr = entry.factory.partition(":")
    if entry.embedded_sim and settings.sim.protocol == "bybit":  # [sim] protocol: the simulator's Bybit face
        module, attr = "core.venue.bybit", "BybitVenue"
    factory: Any = getattr(importlib.import_module(module), attr)
    venue: Venue = factory(settings.exchange, load_credentials(settings))
    return venue
