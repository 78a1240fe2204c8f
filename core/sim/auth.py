"""OKX v5 request signing, verified exactly as OKX does it.

REST: base64(HMAC-SHA256(secret, timestamp + METHOD + request-path-with-query + body)) over the raw
request target as the client sent it (aiohttp ``request.raw_path``), never a re-encoded path:
re-encoding would accept signatures OKX rejects and reject ones it accepts.
Demo keys (all of the simulator's) also need the header ``x-simulated-trading: 1`` (ccxt's
sandbox mode sends it), else 50101, as on OKX.
WS login: the same HMAC over ``timestamp + "GET" + "/users/self/verify"`` (timestamp in seconds).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime

from core.sim.exchange import SimError
from core.sim.state import Account

MAX_SKEW_S = 30.0


def sign(secret: str, prehash: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison that takes any text (``hmac.compare_digest`` raises TypeError
    on a non-ASCII str, so a passphrase or signature header "é" would answer 500)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def _parse_iso(ts: str) -> float:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise SimError("50102", "Timestamp request expired", 401) from None


def verify_rest(accounts: dict[str, Account], headers: Mapping[str, str], method: str,
                raw_path: str, body: str, now: float | None = None) -> Account:
    """The account the request is signed for, or SimError (HTTP 401) naming what is wrong."""
    get = headers.get
    key = get("OK-ACCESS-KEY") or ""
    passphrase = get("OK-ACCESS-PASSPHRASE")
    ts = get("OK-ACCESS-TIMESTAMP") or ""
    signature = get("OK-ACCESS-SIGN") or ""
    if not key:
        raise SimError("50103", 'Request header "OK-ACCESS-KEY" can not be empty', 401)
    if passphrase is None or passphrase == "":
        raise SimError("50104", 'Request header "OK-ACCESS-PASSPHRASE" can not be empty', 401)
    if not ts:
        raise SimError("50107", 'Request header "OK-ACCESS-TIMESTAMP" can not be empty', 401)
    acct = accounts.get(key)
    if acct is None:
        raise SimError("50111", "Invalid OK-ACCESS-KEY", 401)
    if get("x-simulated-trading") != "1":
        # every simulator account is a demo-trading key, and OKX refuses those without the header
        raise SimError("50101", "APIKey does not match current environment.", 401)
    if abs((now if now is not None else time.time()) - _parse_iso(ts)) > MAX_SKEW_S:
        raise SimError("50102", "Timestamp request expired", 401)
    if not _same(passphrase, acct.passphrase):
        raise SimError("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect', 401)
    expected = sign(acct.secret, ts + method.upper() + raw_path + body)
    if not _same(signature, expected):
        raise SimError("50113", "Invalid Sign", 401)
    return acct


def verify_ws_login(accounts: dict[str, Account], arg: dict[str, object], now: float | None = None) -> Account:
    """The account of a WS login arg; SimError 60009 (login failed) or 60006 (stale timestamp)."""
    key = str(arg.get("apiKey") or "")
    acct = accounts.get(key)
    ts = str(arg.get("timestamp") or "")
    if acct is None or str(arg.get("passphrase") or "") != acct.passphrase:
        raise SimError("60009", "Login failed.")
    try:
        skew = abs((now if now is not None else time.time()) - float(ts))  # float ok: clock skew in seconds
    except ValueError:
        raise SimError("60009", "Login failed.") from None
    if skew > MAX_SKEW_S:
        raise SimError("60006", "Timestamp request expired")
    if not _same(str(arg.get("sign") or ""), sign(acct.secret, ts + "GET" + "/users/self/verify")):
        raise SimError("60009", "Login failed.")
    return acct
