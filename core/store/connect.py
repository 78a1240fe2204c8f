"""Connecting to the store: the URL without its password, and errors as one plain line.

Why no password in the URL: config.toml is shared, copied and committed; the password comes from
PGPASSWORD or ~/.pgpass (libpq's own rules, which asyncpg follows), never from the file.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.store.errors import StoreError

CONNECT_TIMEOUT_S = 5.0
SCHEMA = "perpdesk"
STATUS_CHANNEL = "perpdesk_status"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a store URL (None when it can)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("postgresql", "postgres"):
        return "must start with postgresql://"
    if parts.password is not None or "password=" in parts.query.lower():
        return ("holds a password: remove it from the URL and give it in the PGPASSWORD "
                "environment variable or ~/.pgpass")
    return None


def safe_url(url: str) -> str:
    """``url`` as it may be shown or logged: any password replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<bad url>"
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def describe(exc: BaseException) -> str:
    """A connection or query failure in a few words (no traceback, no password)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return safe_url(text) if "://" in text else text


async def connect(url: str, *, what: str = "store", timeout: float = CONNECT_TIMEOUT_S,
                  application_name: str | None = None) -> Any:
    """An asyncpg connection, or StoreError naming the server and why.

    ``application_name`` is what pg_stat_activity shows for the connection, so a DBA can tell the
    engine's connections apart (and find the one to look at); an application_name the URL gives
    wins."""
    import asyncpg

    settings = None
    if application_name is not None and "application_name=" not in urlsplit(url).query:
        settings = {"application_name": application_name}
    try:
        return await asyncpg.connect(url, timeout=timeout, server_settings=settings)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"{what}: cannot connect to PostgreSQL at {safe_url(url)}: "
                         f"{describe(exc)}") from None
