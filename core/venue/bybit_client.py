"""Bybit v5 REST through ccxt for the native ``bybit`` venue: one client, one error translation.

Why ccxt: Bybit's signing (X-BAPI-* headers, HMAC over timestamp + key + recvWindow + payload) and
retCodes follow one maintained implementation; every history call uses ccxt's implicit raw
endpoints (``privateGetV5ExecutionList`` ...) so Bybit's own fields reach our parsers
(core.venue.bybit_parse). The retry and clock handling are the OKX client's (core.venue.okx_rest):
only the client, the wording and where Bybit's message sits differ.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt

from core.venue.base import VenueError, VenueErrorKind
from core.venue.ccxt_forms import error_body
from core.venue.okx_rest import OkxRest

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# retCodes after which Bybit may or may not have executed a write (ccxt files them under the
# generic ExchangeError): 10000 "Server Timeout", 10016 "System error. Please try again later".
# A write answered so is looked up by its orderLinkId, never reported as simply failed.
SERVER_SIDE = {10000: VenueErrorKind.TIMEOUT, 10016: VenueErrorKind.UNAVAILABLE}


def bybit_code(exc: BaseException) -> int | None:
    """Bybit's retCode in a ccxt error ("bybit {json body}"), None when there is none."""
    body = error_body(exc)
    code = body.get("retCode") if isinstance(body, dict) else None
    return code if isinstance(code, int) else None


def bybit_message(exc: BaseException) -> str:
    """Bybit's own words from a ccxt error ("bybit {json body}"): retMsg (Bybit retCode)."""
    body = error_body(exc)
    if isinstance(body, dict) and "retCode" in body:
        return f"{str(body.get('retMsg') or '').strip()} (Bybit {body.get('retCode')})"
    return str(exc).removeprefix("bybit ").strip()[:300]


def build_client(url: str | None, testnet: bool, creds: tuple[str, str] | None) -> Any:
    """ccxt bybit pointed at Bybit, Bybit's testnet, or a simulator with the Bybit face (``url``)."""
    loopback = bool(url) and (urlsplit(url).hostname or "") in _LOOPBACK
    config: dict[str, Any] = {"enableRateLimit": not loopback, "options": {"defaultType": "swap"}}
    if creds is not None:
        config.update(apiKey=creds[0], secret=creds[1])
    ex = ccxt.bybit(config)
    if testnet:
        ex.set_sandbox_mode(True)  # must precede url overrides: it copies urls['test'] over urls['api']
    ex.has["fetchCurrencies"] = False  # else load_markets calls the private /v5/asset/coin/query-info
    if url:
        ex.urls["api"] = {**ex.urls["api"], **{k: url for k in ("spot", "futures", "v2", "public", "private")}}
    return ex


class BybitClient(OkxRest):
    """The ccxt bybit client, its error translation and the exchange clock."""

    def __init__(self, url: str | None, testnet: bool, creds: tuple[str, str] | None, simulator: bool) -> None:
        self.url = url
        self.simulator = simulator
        self.ex = build_client(url, testnet, creds)
        self._clock_task = None

    @property
    def address(self) -> str:
        return self.url or str(self.ex.urls["api"]["public"]).replace("{hostname}", str(self.ex.hostname))

    def said(self, exc: BaseException) -> str:
        return bybit_message(exc)

    def translate(self, what: str, exc: BaseException) -> VenueError:
        """The one VenueError sentence for a ccxt exception (see VenueErrorKind)."""
        said = bybit_message(exc)
        if isinstance(exc, ccxt.InvalidNonce):
            return VenueError(f"the exchange rejected the request time while {what}: {said} — this "
                              "computer's clock is off Bybit's by more than the 5 s receive window; sync "
                              "the system clock (NTP)", VenueErrorKind.CLOCK)
        if isinstance(exc, ccxt.AuthenticationError):
            return VenueError(f"exchange rejected the API key while {what}: {said} — check PERPDESK_API_KEY "
                              "and PERPDESK_API_SECRET (testnet keys need [exchange] sandbox = true)",
                              VenueErrorKind.AUTH)
        if isinstance(exc, ccxt.InsufficientFunds):
            return VenueError(f"{what} rejected: insufficient margin — {said}; reduce the size or add margin",
                              VenueErrorKind.REJECTED)
        if isinstance(exc, ccxt.OrderNotFound):
            return VenueError(f"{what} failed: order not found (already filled or canceled?) — {said}",
                              VenueErrorKind.NOT_FOUND)
        if isinstance(exc, ccxt.InvalidOrder):
            return VenueError(f"{what} rejected by the exchange: {said}", VenueErrorKind.REJECTED)
        if isinstance(exc, ccxt.NetworkError):
            return self._network(what, exc)
        if isinstance(exc, ccxt.BadRequest):
            return VenueError(f"{what} failed: {said}", VenueErrorKind.BAD_REQUEST)
        server_side = SERVER_SIDE.get(bybit_code(exc) or 0)
        if server_side is not None:
            return VenueError(f"{what} failed: the exchange had an internal error — {said}; try again "
                              "shortly", server_side)
        return VenueError(f"{what} failed: {said}")
