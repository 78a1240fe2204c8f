"""`perpdesk store init`, `perpdesk accounts` and `perpdesk report --store`: the work behind the CLI.

Each fails with a StoreError (one plain line, exit 2) that console/cli.py prints; a role that
lacks a right (the engine's insert-only role asked to read, say) is said in those words.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, Protocol, TypeVar

from core.store.connect import connect, describe, safe_url, url_problem
from core.store.errors import StoreError

T = TypeVar("T")


class _StoreSettings(Protocol):
    url: str | None
    read_url: str | None


class _Settings(Protocol):
    @property
    def store(self) -> _StoreSettings: ...


def read_url(settings: _Settings, url: str | None, what: str) -> str:
    """The URL a reading command uses: --url, else [store] read_url, else [store] url."""
    chosen = url or settings.store.read_url or settings.store.url
    if not chosen:
        raise StoreError(f"{what}: no store configured; set [store] read_url (or url) in "
                         "config.toml, or pass --url postgresql://perpdesk_reader@host/db")
    problem = url_problem(chosen)
    if problem is not None:
        raise StoreError(f"{what}: --url {problem}")
    return chosen


async def _read(url: str, what: str, work: Callable[[Any], Awaitable[T]]) -> T:
    import asyncpg

    conn = await connect(url, what=what)
    try:
        return await work(conn)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise StoreError(f"{what}: {describe(exc)} for the role in {safe_url(url)}; use the "
                         "read-only role's URL ([store] read_url)") from None
    except asyncpg.UndefinedTableError:
        raise StoreError(f"{what}: the store at {safe_url(url)} has no perpdesk schema; "
                         "run `perpdesk store init` first") from None
    except asyncpg.PostgresError as exc:
        raise StoreError(f"{what}: {describe(exc)}") from None
    finally:
        await conn.close()


def init_main(settings: _Settings, url: str | None, writer: str, reader: str) -> int:
    from core.store.migrations import init_store

    chosen = url or settings.store.url
    if not chosen:
        raise StoreError("perpdesk store init: give --url postgresql://<admin>@host/db "
                         "(a role that may create roles) or set [store] url")
    problem = url_problem(chosen)
    if problem is not None:
        raise StoreError(f"perpdesk store init: --url {problem}")
    for line in asyncio.run(init_store(chosen, writer, reader)):
        print(line)
    return 0


def accounts_main(settings: _Settings, url: str | None, fmt: str) -> int:
    from core.store.queries import fetch_accounts, format_accounts

    what = "perpdesk accounts"
    rows = asyncio.run(_read(read_url(settings, url, what), what, fetch_accounts))
    if fmt == "json":
        print(json.dumps([r.as_json() for r in rows], indent=1))
    elif not rows:
        print("no engine has written a status row to the store yet")
    else:
        print("\n".join(format_accounts(rows)))
    return 0


def report_main(settings: _Settings, url: str | None, day: date | None, *,
                first: date | None = None, last: date | None = None, symbol: str | None = None,
                fmt: str = "table") -> int:
    """`perpdesk report --store`: the options and formats of `perpdesk report` (core.accounting.report
    prints both), each engine's rows with an ``engine`` column, then ALL's."""
    from core.accounting.report import print_report, scope_text
    from core.store.queries import fetch_report, flatten

    what = "perpdesk report --store"

    async def work(conn: Any) -> list[Any]:
        return await fetch_report(conn, day, first=first, last=last, symbol=symbol)

    reports = asyncio.run(_read(read_url(settings, url, what), what, work))
    rows, engines = flatten(reports)
    print_report(rows, fmt, f"no journal rows in the store{scope_text(day, first, last, symbol)}",
                 engines)
    return 0
