"""Exchange adapters: the ``Venue`` protocol (base), the registry that builds one, and OKX.

Why the names below are loaded lazily (PEP 562): config validation imports
``core.venue.registry``, and importing this package must not import ccxt (most of a second) for
that. ``from core.venue import OkxVenue`` still works; it imports the OKX adapter on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "OkxVenue": "core.venue.okx",
    "new_client_order_id": "core.venue.okx",
    "classify_origin": "core.venue.okx_parse",
    "Venue": "core.venue.base",
    "VenueError": "core.venue.base",
    "VenueErrorKind": "core.venue.base",
    "make_venue": "core.venue.factory",
    "FundingRate": "core.events",
    "FundingSignal": "core.events",
    "MalformedPush": "core.events",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
