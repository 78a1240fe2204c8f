"""Bybit v5 request signing, verified as Bybit documents it (docs/v5/guide, wss-authentication).

REST: hex(HMAC-SHA256(secret, timestamp + apiKey + recvWindow + payload)), where the payload is the
raw query string a GET sent (exactly as sent: re-encoding would accept signatures Bybit rejects) or
the raw body of a POST; headers X-BAPI-API-KEY, X-BAPI-TIMESTAMP (ms), X-BAPI-RECV-WINDOW (default
5000) and X-BAPI-SIGN. A request is refused unless ``serverTime - recvWindow <= timestamp <
serverTime + 1000``.
WS: ``{"op": "auth", "args": [apiKey, expires, signature]}`` with signature =
hex(HMAC-SHA256(secret, "GET/realtime" + expires)); expires (ms) must lie in the future.
The simulator's demo key (core.settings.demo) is the only account; its secret signs both.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from core.sim.params import SimError
from core.sim.state import Account

DEFAULT_RECV_WINDOW_MS = 5000
AHEAD_MS = 1000  # Bybit's rule: a timestamp at most 1 s ahead of the server


def sign(secret: str, prehash: str) -> str:
    return hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).hexdigest()


def verify_rest(accounts: dict[str, Account], headers: Mapping[str, str], payload: str, now_ms: int) -> Account:
    """The account a private request is signed for, or SimError with Bybit's retCode (HTTP 401 for
    a missing or unknown key or a bad signature, as Bybit answers them)."""
    key = headers.get("X-BAPI-API-KEY") or ""
    ts = headers.get("X-BAPI-TIMESTAMP") or ""
    signature = headers.get("X-BAPI-SIGN") or ""
    window_text = headers.get("X-BAPI-RECV-WINDOW") or ""
    if not key or not signature or not ts:
        raise SimError("10003", "API key is invalid." if not key else "Missing X-BAPI-SIGN or X-BAPI-TIMESTAMP.",
                       401)
    acct = accounts.get(key)
    if acct is None:
        raise SimError("10003", "API key is invalid.", 401)
    try:
        ts_ms = int(ts)
        window = int(window_text) if window_text else DEFAULT_RECV_WINDOW_MS
    except ValueError:
        raise SimError("10002", "invalid request, please check your timestamp or recv_window param") from None
    if not (now_ms - window <= ts_ms < now_ms + AHEAD_MS):
        raise SimError("10002", f"invalid request, please check your server timestamp or recv_window param. "
                                f"req_timestamp[{ts_ms}],server_timestamp[{now_ms}],recv_window[{window}]")
    expected = sign(acct.secret, ts + key + window_text + payload)
    if not hmac.compare_digest(expected, signature.lower()):
        raise SimError("10004", "error sign! origin_string[" + ts + key + window_text + payload + "]", 401)
    return acct


def verify_ws(accounts: dict[str, Account], args: list[object], now_ms: int) -> Account:
    """The account of an ``op: auth`` request; SimError naming what is wrong."""
    if len(args) != 3:
        raise SimError("10001", "Params Error")
    key, expires, signature = (str(a) for a in args)
    acct = accounts.get(key)
    if acct is None:
        raise SimError("10003", "Invalid apikey")
    try:
        exp = int(expires)
    except ValueError:
        raise SimError("10001", "Params Error") from None
    if exp <= now_ms:
        raise SimError("10002", "Params Error: the request expired")
    if not hmac.compare_digest(sign(acct.secret, "GET/realtime" + expires), signature.lower()):
        raise SimError("10004", "Invalid sign")
    return acct
