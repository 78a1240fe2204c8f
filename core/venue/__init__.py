"""OKX venue: ccxt async REST + our own OKX v5 WebSocket streams, parsed into domain types.

``OkxVenue`` is the engine's only door to the exchange (docs/architecture.md "Venue API").
"""
from core.venue.okx import OkxVenue, VenueError, new_client_order_id
from core.venue.okx_parse import FundingRate, FundingSignal, MalformedPush, classify_origin

__all__ = ["OkxVenue", "VenueError", "FundingSignal", "FundingRate", "MalformedPush", "classify_origin", "new_client_order_id"]
