"""The CSV families: exact column order and the one place domain objects become CSV rows.

Column order is part of the product contract (SPEC "Journal"): the SPEC columns come first, in
SPEC order, and our extra columns are only ever appended after them, so a reader keyed on the SPEC
columns (or a spreadsheet with fixed column letters) keeps working as extras grow.
"""
from __future__ import annotations

import csv
import io
import operator
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.journal.errors import JournalError
from core.money import plain

if TYPE_CHECKING:  # the row builders' argument types; the model is imported on first use
    from core.events import RiskEvent
    from core.model import (
        CloseResult,
        Fill,
        FundingPayment,
        OrderUpdate,
        PositionSnapshot,
    )

ORDERS = "orders"
TRADES = "trades"
FUNDING = "funding"
POSITIONS_OPEN = "positions_open"
RISK = "risk"

ORDERS_COLUMNS: tuple[str, ...] = (
    "ts", "event", "symbol", "order_id", "client_order_id", "fill_id", "side", "contracts",
    "contract_size", "coins", "price", "fee", "fee_ccy", "reduce_only", "liquidity", "origin",
    # extras
    "pos_side", "category", "algo_id", "fill_pnl", "liq_penalty", "order_type",
    "filled_contracts", "avg_price", "message",
)
TRADES_COLUMNS: tuple[str, ...] = (
    "closed_at", "symbol", "position_id", "side", "reason", "size_before", "size_closed",
    "size_after", "contracts_closed", "contract_size", "entry_price", "exit_price", "gross_pnl",
    "fee", "liq_penalty", "funding", "net_pnl", "opened_at", "source",
    # extras
    "close_id", "fill_ids",
)
FUNDING_COLUMNS: tuple[str, ...] = (
    "ts", "symbol", "position_id", "rate", "position_contracts", "position_coins", "mark_price",
    "amount", "ccy", "bill_id",
)
POSITIONS_OPEN_COLUMNS: tuple[str, ...] = (
    "ts", "symbol", "position_id", "side", "contracts", "coins", "entry_price", "mark_price",
    "unrealized_pnl", "funding_accrued", "leverage", "margin_mode", "liq_price",
    # extras
    "pos_side", "contract_size", "opened_at",
)

RISK_COLUMNS: tuple[str, ...] = ("ts", "event", "rule", "value", "limit", "state", "message")

COLUMNS: dict[str, tuple[str, ...]] = {
    ORDERS: ORDERS_COLUMNS,
    TRADES: TRADES_COLUMNS,
    FUNDING: FUNDING_COLUMNS,
    POSITIONS_OPEN: POSITIONS_OPEN_COLUMNS,
    RISK: RISK_COLUMNS,
}
FAMILIES: tuple[str, ...] = tuple(COLUMNS)

# Columns the typed readers turn into Decimal ("" stays None: OKX's "missing", e.g. liq_price).
DECIMAL_COLUMNS: dict[str, frozenset[str]] = {
    ORDERS: frozenset({"contracts", "contract_size", "coins", "price", "fee", "fill_pnl",
                       "liq_penalty", "filled_contracts", "avg_price"}),
    TRADES: frozenset({"size_before", "size_closed", "size_after", "contracts_closed",
                       "contract_size", "entry_price", "exit_price", "gross_pnl", "fee",
                       "liq_penalty", "funding", "net_pnl"}),
    FUNDING: frozenset({"rate", "position_contracts", "position_coins", "mark_price", "amount"}),
    POSITIONS_OPEN: frozenset({"contracts", "coins", "entry_price", "mark_price",
                               "unrealized_pnl", "funding_accrued", "leverage", "liq_price",
                               "contract_size"}),
    RISK: frozenset({"value", "limit"}),
}

FILL_EVENT = "fill"
FILL_IDS_SEPARATOR = ";"


def _values(enum: type) -> frozenset[str]:
    return frozenset(member.value for member in enum)  # type: ignore[attr-defined]


# Columns whose value must be one of a fixed set: a stray byte there (a spreadsheet's re-encoding,
# a hand edit) would otherwise surface as a bare ValueError far from the file that holds it.
# Built on first use (``__getattr__`` below) from the domain enums: importing core.model and
# core.events costs a command that reads only the index (`perpdesk report`) a good part of its time.
def _enum_columns() -> dict[str, dict[str, frozenset[str]]]:
    from core.events import RiskEventKind, TradingState
    from core.model import CloseReason, Liquidity, OrderSide, OrderState, Origin, PositionSide, RowSource

    return {
        ORDERS: {
            "event": _values(OrderState) | {FILL_EVENT},
            "side": _values(OrderSide),
            "reduce_only": frozenset({"true", "false"}),
            "liquidity": _values(Liquidity) | {""},
            "origin": _values(Origin) | {""},
        },
        TRADES: {"side": _values(PositionSide), "reason": _values(CloseReason),
                 "source": _values(RowSource)},
        FUNDING: {},
        POSITIONS_OPEN: {"side": _values(PositionSide)},
        RISK: {"event": _values(RiskEventKind), "state": _values(TradingState)},
    }


if TYPE_CHECKING:
    ENUM_COLUMNS: dict[str, dict[str, frozenset[str]]]


def __getattr__(name: str) -> Any:
    if name == "ENUM_COLUMNS":
        value = globals()["ENUM_COLUMNS"] = _enum_columns()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ISO-8601 timestamp columns (never empty: every row is written with them).
TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    ORDERS: ("ts",),
    TRADES: ("closed_at", "opened_at"),
    FUNDING: ("ts",),
    POSITIONS_OPEN: ("ts", "opened_at"),
    RISK: ("ts",),
}


FILE_RE = re.compile(
    r"^(" + "|".join(FAMILIES) + r")_(\d{4}-\d{2}-\d{2})\.csv$"
)


def day_files(directory: Path) -> list[tuple[str, Path]]:
    """(family, path) of every journal day file in ``directory``, oldest day first.

    Every entry with a day file's name is listed, a folder or a link too: opening it refuses with
    its name (a ``funding_<day>.csv`` folder read as "no funding" would hide money silently).
    """
    found: list[tuple[str, str, Path]] = []
    if directory.is_dir():
        for entry in directory.iterdir():
            m = FILE_RE.match(entry.name)
            if m:
                found.append((m.group(2), m.group(1), entry))
    found.sort()
    return [(family, path) for _, family, path in found]


def check_header(family: str, header: list[str] | None, path: Path) -> tuple[str, ...]:
    """The file's own column order if ``header`` holds exactly ``family``'s columns; else refuse.

    Why accept another order: a spreadsheet can move columns and save, and every row is read by
    column name, so nothing is misread as long as new rows are written in the file's own order
    (the writer does). Why refuse anything else: a missing or renamed column cannot be read by
    name, and guessing would book the wrong value; the trader gets the file and the columns.
    """
    expected = COLUMNS[family]
    if header is not None and tuple(header) == expected:
        return expected
    if header is None:
        raise JournalError(f"journal file {path}: line 1: the header is not one CSV line; "
                           f"expected the {family} columns {','.join(expected)}")
    missing = [c for c in expected if c not in header]
    unknown = [c for c in header if c not in expected]
    doubled = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or doubled:
        parts = [f"missing {', '.join(missing)}" if missing else "",
                 f"unknown {', '.join(repr(c) for c in unknown)}" if unknown else "",
                 f"repeated {', '.join(doubled)}" if doubled else ""]
        raise JournalError(
            f"journal file {path}: line 1: the header does not hold the {family} columns ("
            + "; ".join(p for p in parts if p)
            + "); restore the header's column names or move the file out of the journal folder")
    return tuple(header)


def layout(header: tuple[str, ...], family: str) -> tuple[int, ...] | None:
    """Indexes into the schema's values for a file with ``header``; None = the schema's order."""
    expected = COLUMNS[family]
    if header == expected:
        return None
    position = {name: i for i, name in enumerate(expected)}
    return tuple(position[name] for name in header)


def row_error(path: Path, line: int, column: str, value: str, expected: str) -> JournalError:
    """One line naming the file, the line number, the column and the value that did not read."""
    return JournalError(f"journal file {path}: line {line}: column {column}: {value!r} is not "
                        f"{expected}; correct or remove that line")


@dataclass(frozen=True, slots=True)
class Row:
    """One formatted CSV line bound for the day file of its own timestamp."""

    family: str
    day: date
    line: str  # the values in schema order, formatted
    values: tuple[str, ...]  # for a file whose header puts the columns in another order
    key: str  # idempotency key ("" = none); its meaning depends on family and event
    ts: datetime


# The texts of a fill row / close row that its FILL / POSITION CLOSED log line repeats, in the
# order core.support.logs takes them: the line reuses the row's texts (each Decimal turned to
# text once per fill or close).
FILL_LOG_TEXTS = operator.itemgetter(*(ORDERS_COLUMNS.index(c) for c in (
    "contracts", "coins", "price", "fee")))
CLOSE_LOG_TEXTS = operator.itemgetter(*(TRADES_COLUMNS.index(c) for c in (
    "size_before", "size_after", "size_closed", "contracts_closed", "entry_price", "exit_price",
    "gross_pnl", "fee", "liq_penalty", "funding", "net_pnl")))


def file_name(family: str, day: date) -> str:
    return f"{family}_{day.isoformat()}.csv"


def header_line(family: str) -> str:
    return format_line(COLUMNS[family])


def line_for(row: Row, order: tuple[int, ...] | None) -> str:
    """``row`` as a line for a file with ``order`` (see ``layout``)."""
    return row.line if order is None else format_line([row.values[i] for i in order])


def format_line(values: tuple[str, ...] | list[str]) -> str:
    """One physical line per row: newlines inside a field would make torn-line repair ambiguous.

    Most rows need no quoting at all (ids, numbers, enum words), and joining them is several times
    cheaper than the csv module; anything with a comma, quote or line break goes through csv so
    the quoting rules stay the csv module's own.
    """
    line = ",".join(values)
    if line.count(",") == len(values) - 1 and '"' not in line and "\n" not in line \
            and "\r" not in line and len(values) > 1:
        return line + "\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [v.replace("\r", " ").replace("\n", " ") for v in values]
    )
    return buf.getvalue()


def parse_line(line: str) -> list[str] | None:
    """Fields of one physical line, or None if it is not one complete CSV record."""
    try:
        rows = list(csv.reader([line.rstrip("\n")], strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def _b(flag: bool) -> str:
    return "true" if flag else "false"


def _day(ts: datetime) -> date:
    return ts.astimezone(UTC).date()


def order_key(order_id: str, event: str) -> str:
    return f"{order_id}|{event}"


def fill_row(fill: Fill) -> Row:
    from core.model import iso  # the model on first use (see ENUM_COLUMNS)

    values = (
        iso(fill.ts), FILL_EVENT, fill.symbol, fill.order_id, fill.client_order_id, fill.fill_id,
        fill.side.value, plain(fill.contracts), plain(fill.contract_size), plain(fill.coins),
        plain(fill.price), plain(fill.fee), fill.fee_ccy, _b(fill.reduce_only),
        fill.liquidity.value, fill.origin.value,
        fill.pos_side, fill.category, fill.algo_id, plain(fill.fill_pnl), plain(fill.liq_penalty),
        "", "", "", "",
    )
    return Row(ORDERS, _day(fill.ts), format_line(values), values, fill.fill_id, fill.ts)


def order_row(update: OrderUpdate) -> Row:
    from core.model import iso  # the model on first use (see ENUM_COLUMNS)

    event = update.state.value
    values = (
        iso(update.ts), event, update.symbol, update.order_id, update.client_order_id, "",
        update.side.value, plain(update.contracts), plain(update.contract_size),
        plain(update.contracts * update.contract_size), plain(update.price), "", "",
        _b(update.reduce_only), "", update.origin.value,
        "", "", "", "", "", update.order_type, plain(update.filled_contracts),
        plain(update.avg_price), update.message,
    )
    return Row(ORDERS, _day(update.ts), format_line(values), values, order_key(update.order_id, event),
               update.ts)


def close_row(close: CloseResult) -> Row:
    from core.model import iso  # the model on first use (see ENUM_COLUMNS)

    values = (
        iso(close.closed_at), close.symbol, close.position_id, close.side.value,
        close.reason.value, plain(close.size_before), plain(close.size_closed),
        plain(close.size_after), plain(close.contracts_closed), plain(close.contract_size),
        plain(close.entry_price), plain(close.exit_price), plain(close.gross_pnl),
        plain(close.fee), plain(close.liq_penalty), plain(close.funding), plain(close.net_pnl),
        iso(close.opened_at), close.source.value,
        close.close_key, FILL_IDS_SEPARATOR.join(close.fill_ids),
    )
    return Row(TRADES, _day(close.closed_at), format_line(values), values, close.close_key,
               close.closed_at)


def funding_row(payment: FundingPayment) -> Row:
    from core.model import iso  # the model on first use (see ENUM_COLUMNS)

    values = (
        iso(payment.ts), payment.symbol, payment.position_id, plain(payment.rate),
        plain(payment.position_contracts), plain(payment.position_coins),
        plain(payment.mark_price), plain(payment.amount), payment.ccy, payment.bill_id,
    )
    return Row(FUNDING, _day(payment.ts), format_line(values), values, payment.bill_id, payment.ts)


def position_row(snap: PositionSnapshot) -> Row:
    from core.model import iso  # the model on first use (see ENUM_COLUMNS)

    values = (
        iso(snap.ts), snap.symbol, snap.position_id, snap.side.value, plain(snap.contracts),
        plain(snap.coins), plain(snap.entry_price), plain(snap.mark_price),
        plain(snap.unrealized_pnl), plain(snap.funding_accrued), plain(snap.leverage),
        snap.margin_mode, plain(snap.liq_price),
        snap.pos_side, plain(snap.contract_size), iso(snap.opened_at),
    )
    return Row(POSITIONS_OPEN, _day(snap.ts), format_line(values), values, "", snap.ts)


def risk_key(event: RiskEvent) -> str:
    """A risk event is unique by its time, kind and rule: recording it twice writes one row."""
    from core.model import iso  # the model on first use (see ENUM_COLUMNS)

    return f"{iso(event.ts)}|{event.event.value}|{event.rule}"


def risk_row(event: RiskEvent) -> Row:
    from core.model import iso  # the model on first use (see ENUM_COLUMNS)

    values = (
        iso(event.ts), event.event.value, event.rule,
        plain(event.value) if event.value is not None else "",
        plain(event.limit) if event.limit is not None else "",
        event.state.value, event.message,
    )
    return Row(RISK, _day(event.ts), format_line(values), values, risk_key(event), event.ts)


def parse_ts(text: str) -> datetime:
    """The journal's ISO-8601 'Z' timestamps back to aware UTC datetimes."""
    return datetime.fromisoformat(text).astimezone(UTC)
