"""The list of venues perpdesk can trade on (``core.venue.factory`` builds one).

Why here and only here: config validation, the runner and reconcile all need to know which venue
names exist and how to build one. Adding a venue is one new module implementing
``core.venue.base.Venue`` plus one ``VENUES`` line. Factories are named by "module:attribute" and
imported on use: importing an exchange library (ccxt) costs most of a second, which config
validation must not pay. For the same reason ``core.venue.base`` (the domain events) is imported
only on an unknown name: `perpdesk report` reads no venue.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VenueEntry:
    """One venue name: what builds it and what it needs."""

    name: str
    factory: str  # "module:attribute" of a callable (exchange settings, credentials) -> Venue
    description: str
    demo_account: bool = False  # runs on the simulator's public demo account (core.settings.demo), no env keys
    embedded_sim: bool = False  # without [exchange] url the runner starts the simulator in-process
    passphrase: bool = True  # its API keys come with a passphrase (OKX) or not (Bybit)


VENUES: dict[str, VenueEntry] = {
    "sim": VenueEntry("sim", "core.venue.okx:OkxVenue", "the built-in OKX v5 simulator",
                      demo_account=True, embedded_sim=True),
    "okx": VenueEntry("okx", "core.venue.okx:OkxVenue", "OKX (live, or demo trading with sandbox = true)"),
    "bybit": VenueEntry("bybit", "core.venue.bybit:BybitVenue",
                        "Bybit v5 linear perpetuals (live, or testnet with sandbox = true)", passphrase=False),
}


def venue_names() -> tuple[str, ...]:
    return tuple(VENUES)


def venue_entry(name: str) -> VenueEntry:
    """The entry of ``name``; VenueError (kind config) naming the supported venues otherwise."""
    try:
        return VENUES[name]
    except KeyError:
        from core.venue.base import VenueError, VenueErrorKind  # events and model: on failure only

        supported = ", ".join(f'"{v}"' for v in VENUES)
        raise VenueError(f'unsupported [exchange] venue "{name}": use {supported}',
                         VenueErrorKind.CONFIG) from None
