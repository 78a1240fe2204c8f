"""A journal CSV line as a store row: the engine's scope, the row's own identity, typed values.

Why the identity is the row's own key (fill_id, order_id|state, close_id, bill_id, ts|position_id,
ts|event|rule) and not a line number: the same row shipped twice (a restart after a crash between
PostgreSQL's commit and the local mark, a day file re-saved by a spreadsheet) must land once,
and ``INSERT ... ON CONFLICT DO NOTHING`` on (engine, row_key) makes it so.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from core.journal import schema
from core.journal.binding import AccountId

# shipped_at is not sent: the server's now() of the shipping transaction (when the row landed)
SCOPE_COLUMNS = ("engine", "venue", "mode", "account", "row_key")


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose rows these are: the engine's name and the account it trades."""

    engine: str
    venue: str
    mode: str  # "demo" or "live"
    account: str  # the exchange's account uid

    @classmethod
    def of(cls, engine: str, account: AccountId) -> Scope:
        return cls(engine, account.venue, "demo" if account.sandbox else "live", account.uid)


def table_columns(family: str) -> tuple[str, ...]:
    """The store table's columns for ``family``, in the order records are built."""
    return (*SCOPE_COLUMNS, *schema.COLUMNS[family])


def row_key(family: str, row: dict[str, str]) -> str:
    """The row's identity within its engine (see the module docstring)."""
    if family == schema.ORDERS:
        if row["event"] == schema.FILL_EVENT:
            return row["fill_id"]
        return schema.order_key(row["order_id"], row["event"])
    if family == schema.TRADES:
        return row["close_id"] or f"{row['closed_at']}|{row['position_id']}"
    if family == schema.FUNDING:
        return row["bill_id"] or f"{row['ts']}|{row['symbol']}"
    if family == schema.POSITIONS_OPEN:
        return f"{row['ts']}|{row['position_id']}"
    return f"{row['ts']}|{row['event']}|{row['rule']}"


class BadRow(ValueError):
    """A line that does not read as its family's row (a hand edit): skipped, never shipped half."""


def _typed(family: str, name: str, text: str) -> object:
    if name in schema.DECIMAL_COLUMNS[family]:
        if text == "":
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise BadRow(f"column {name}: {text!r} is not a decimal") from None
        if not value.is_finite():
            raise BadRow(f"column {name}: {text!r} is not a finite decimal")
        return value
    if name in schema.TIME_COLUMNS[family]:
        try:
            return schema.parse_ts(text)
        except ValueError:
            raise BadRow(f"column {name}: {text!r} is not a time") from None
    return text


def record(family: str, header: tuple[str, ...], fields: list[str], scope: Scope) -> tuple[object, ...]:
    """One store record from a CSV line's ``fields`` read under the file's own ``header``."""
    if len(fields) != len(header):
        raise BadRow(f"{len(fields)} fields, the header has {len(header)}")
    if any("\x00" in f for f in fields):
        # PostgreSQL's text cannot hold NUL: the whole batch would be refused at every retry and
        # no row after this one would ever land. Shown as U+FFFD, as an undecodable byte is.
        fields = [f.replace("\x00", "\ufffd") for f in fields]
    row = dict(zip(header, fields, strict=True))
    values = [_typed(family, name, row[name]) for name in schema.COLUMNS[family]]
    return (scope.engine, scope.venue, scope.mode, scope.account, row_key(family, row), *values)
