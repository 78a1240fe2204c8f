"""OKX v5 REST through ccxt: one client, one error translation, one clock.

Why ccxt for REST: signing, demo-trading headers and OKX's error codes follow one maintained
implementation; history calls use ccxt's implicit raw endpoints so OKX's own fields survive. Why
the clock lives here: OKX refuses a request whose timestamp is more than 30 s off its own clock,
and both the REST signing and the WS login must use the same measured offset. Every ccxt failure
leaves this module as one ``VenueError`` sentence with a ``VenueErrorKind``.
"""
from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import ccxt.async_support as ccxt
from loguru import logger

from core.venue.base import TRANSIENT, VenueError, VenueErrorKind
from core.venue.ccxt_forms import error_body

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
READ_RETRY_DELAYS = (0.25, 0.5, 1.0)  # seconds before each retry of an idempotent read
CLOCK_WARN_S = 2.0  # a clock this far off the exchange's is worth telling the trader
DEMO_HEADER = "x-simulated-trading"  # OKX answers 50101 to demo keys sent without it


def okx_message(exc: BaseException) -> str:
    """OKX's own words from a ccxt error ("okx {json body}"): sMsg (sCode) or msg (code)."""
    body = error_body(exc)
    if isinstance(body, dict):
        for item in body.get("data") or ():
            if isinstance(item, dict) and str(item.get("sCode") or "0") != "0":
                return f"{str(item.get('sMsg') or '').strip()} (OKX {item.get('sCode')})"
        return f"{str(body.get('msg') or '').strip()} (OKX {body.get('code')})"
    return str(exc).removeprefix("okx ").strip()[:300]


def _reason(exc: BaseException) -> str:
    """The transport reason inside a ccxt NetworkError, without ccxt's method+url preamble."""
    text = str(exc).removeprefix("okx ").strip()
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause):
        return str(cause)[:200]
    return text[:200] or type(exc).__name__


def build_client(url: str | None, sandbox: bool, demo: bool, creds: tuple[str, str, str] | None) -> Any:
    """ccxt okx pointed at OKX, OKX demo, or a loopback simulator (okx-protocol.md order).

    ``demo``: the keys are demo keys (OKX demo trading, or the simulator's demo account), so every
    request carries ``x-simulated-trading: 1``; ccxt's sandbox mode sets it too, but a simulator
    url is used without OKX's demo urls.
    """
    loopback = bool(url) and (urlsplit(url).hostname or "") in _LOOPBACK
    config: dict[str, Any] = {
        "enableRateLimit": not loopback,
        "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}},
    }
    if creds is not None:
        config.update(apiKey=creds[0], secret=creds[1], password=creds[2])
    ex = ccxt.okx(config)
    if sandbox:
        ex.set_sandbox_mode(True)  # must precede url overrides: it copies urls['test'] over urls['api']
    if demo or sandbox:
        ex.headers = {**(ex.headers or {}), DEMO_HEADER: "1"}
    ex.has["fetchCurrencies"] = False  # else load_markets calls private /asset/currencies
    if url:
        ex.urls["api"]["rest"] = url
    return ex


class OkxRest:
    """The ccxt client, its error translation and the exchange clock, for every REST caller."""

    def __init__(self, url: str | None, sandbox: bool, demo: bool, creds: tuple[str, str, str] | None,
                 simulator: bool) -> None:
        self.url = url
        self.simulator = simulator  # hints name `perpdesk sim` rather than the network
        self.sandbox = sandbox  # the key hint: demo keys need sandbox, live keys must not have it
        self.ex = build_client(url, sandbox, demo, creds)
        self._clock_task: asyncio.Future[bool] | None = None

    @property
    def address(self) -> str:
        return self.url or str(self.ex.urls["api"]["rest"])

    async def close(self) -> None:
        await self.ex.close()

    async def call(self, what: str, call: Awaitable[Any] | Callable[[], Awaitable[Any]], *,
                   retry: bool = False) -> Any:
        """Await a ccxt call; translate its exceptions into one actionable VenueError.

        ``call`` may be a zero-argument factory: then a request refused for its timestamp is
        re-sent once after re-reading the exchange's clock, and with ``retry`` (idempotent reads
        only) a rate limit, 5xx, timeout or lost connection is retried with a short backoff, so a
        transient fault costs a backfill a second rather than a failed resync.
        """
        factory = call if callable(call) else None
        clock_synced = False
        attempt = 0
        while True:
            try:
                return await (factory() if factory is not None else call)  # type: ignore[misc]
            except ccxt.BaseError as exc:
                error = self.translate(what, exc)
                if factory is None:
                    raise error from None
                if error.kind is VenueErrorKind.CLOCK and not clock_synced:
                    clock_synced = True
                    if await self.sync_clock():
                        continue
                if not (retry and error.kind in TRANSIENT and attempt < len(READ_RETRY_DELAYS)):
                    raise error from None
                logger.warning(f"REST RETRY {what}: {error} (retry {attempt + 1} of "
                               f"{len(READ_RETRY_DELAYS)} in {READ_RETRY_DELAYS[attempt]:g} s)")
                await asyncio.sleep(READ_RETRY_DELAYS[attempt])
                attempt += 1

    def _key_hint(self) -> str:
        """Which key kind this config expects, only where a trader could have mixed them up."""
        if self.simulator:
            return ""
        if self.sandbox:
            return " ([exchange] sandbox = true takes OKX demo-trading keys; live keys need sandbox = false)"
        return " (demo keys need [exchange] sandbox = true)"

    def translate(self, what: str, exc: BaseException) -> VenueError:
        """The one VenueError sentence for a ccxt exception (see VenueErrorKind)."""
        if isinstance(exc, ccxt.InvalidNonce):  # before NetworkError: ccxt files it under it
            return VenueError(
                f"the exchange rejected the request time while {what}: {okx_message(exc)} — this "
                f"computer's clock {self._clock_words()}; sync the system clock (NTP)", VenueErrorKind.CLOCK)
        if isinstance(exc, ccxt.AuthenticationError):
            return VenueError(
                f"exchange rejected the API key while {what}: {okx_message(exc)} — "
                "check PERPDESK_API_KEY, PERPDESK_API_SECRET and PERPDESK_API_PASSPHRASE"
                + self._key_hint(), VenueErrorKind.AUTH)
        if isinstance(exc, ccxt.InsufficientFunds):
            return VenueError(f"{what} rejected: insufficient margin — {okx_message(exc)}; "
                              "reduce the size or add margin", VenueErrorKind.REJECTED)
        if isinstance(exc, ccxt.OrderNotFound):
            return VenueError(f"{what} failed: order not found (already filled or canceled?) — "
                              f"{okx_message(exc)}", VenueErrorKind.NOT_FOUND)
        if isinstance(exc, ccxt.InvalidOrder):
            return VenueError(f"{what} rejected by the exchange: {okx_message(exc)}", VenueErrorKind.REJECTED)
        if isinstance(exc, ccxt.NetworkError):
            return self._network(what, exc)
        if isinstance(exc, ccxt.BadRequest):
            return VenueError(f"{what} failed: {okx_message(exc)}", VenueErrorKind.BAD_REQUEST)
        return VenueError(f"{what} failed: {okx_message(exc)}")

    def said(self, exc: BaseException) -> str:
        """The exchange's own words in a ccxt error (the Bybit client reads Bybit's)."""
        return okx_message(exc)

    def _network(self, what: str, exc: BaseException) -> VenueError:
        transport = exc.__cause__ is not None  # ccxt raises transport failures `from` them
        if isinstance(exc, ccxt.RateLimitExceeded):
            return VenueError(f"{what} refused by the exchange's rate limit: {self.said(exc)} "
                              "— too many requests; wait a moment and retry", VenueErrorKind.RATE_LIMIT)
        if isinstance(exc, ccxt.RequestTimeout):
            said = f"no answer within {self.ex.timeout / 1000:g} s" if transport else self.said(exc)
            return VenueError(f"{what}: the exchange at {self.address} did not answer in time "
                              f"({said})", VenueErrorKind.TIMEOUT)
        if not transport and isinstance(exc, ccxt.ExchangeNotAvailable):
            return VenueError(f"{what} failed: the exchange is unavailable — {self.said(exc)}; "
                              "try again shortly", VenueErrorKind.UNAVAILABLE)
        hint = ("is `perpdesk sim` running? check [exchange] url" if self.simulator or self.url
                else "check the network and [exchange] url")
        refused = isinstance(exc.__cause__, (aiohttp.ClientConnectorError, socket.gaierror))
        return VenueError(f"cannot reach exchange at {self.address}: {_reason(exc)} — {hint}",
                          VenueErrorKind.UNREACHABLE if refused or not transport else VenueErrorKind.DISCONNECTED)

    # ------------------------------------------------------------------ clock

    @property
    def clock_offset_s(self) -> float:
        """This computer's clock minus the exchange's, in seconds (0 until measured)."""
        return float(self.ex.options.get("timeDifference") or 0) / 1000  # float ok: seconds

    def exchange_time(self) -> float:
        """Now on the exchange's clock (unix seconds): what requests and WS logins are signed with."""
        return time.time() - self.clock_offset_s

    def _clock_words(self) -> str:
        offset = self.clock_offset_s
        if abs(offset) < 0.5:
            return "differs from the exchange's by more than 30 s"
        return (f"is {abs(offset):.1f} s {'ahead of' if offset > 0 else 'behind'} the exchange's "
                "(the exchange accepts 30 s)")

    async def resync_clock_once(self) -> bool:
        """sync_clock for the streams: three streams refused at once share one measurement."""
        if self._clock_task is None or self._clock_task.done():
            self._clock_task = asyncio.ensure_future(self.sync_clock())
        return await asyncio.shield(self._clock_task)

    async def sync_clock(self) -> bool:
        """Measure the exchange's clock (GET /public/time) and sign requests with it from now on.

        Why: OKX refuses a request whose timestamp is more than 30 s off its own clock (50102),
        and a laptop back from sleep or a VM without NTP easily drifts that far. ccxt's
        ``timeDifference`` option shifts the signing timestamp; our WS login uses the same offset.
        Returns False (and keeps the local clock) when the exchange's time cannot be read.
        """
        before = self.clock_offset_s
        try:
            await self.ex.load_time_difference()
        except ccxt.BaseError as exc:
            logger.warning(f"CLOCK exchange time unavailable ({okx_message(exc)[:120]}); "
                           "signing with this computer's clock")
            return False
        offset = self.clock_offset_s
        if abs(offset) >= CLOCK_WARN_S and abs(offset - before) >= 0.5:
            logger.warning(f"CLOCK this computer's clock is {abs(offset):.1f} s "
                           f"{'ahead of' if offset > 0 else 'behind'} the exchange's; requests are "
                           "signed with the exchange's time — sync the system clock (NTP)")
        return True
