"""The four CSV families: exact column order and the one place domain objects become CSV rows.

Column order is part of the product contract (SPEC "Journal"): the SPEC columns come first, in
SPEC order, and our extra columns are only ever appended after them, so a reader keyed on the SPEC
columns (or a spreadsheet with fixed column letters) keeps working as extras grow.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime

from core.model import CloseResult, Fill, FundingPayment, OrderUpdate, PositionSnapshot, iso
from core.money import plain

ORDERS = "orders"
TRADES = "trades"
FUNDING = "funding"
POSITIONS_OPEN = "positions_open"

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

COLUMNS: dict[str, tuple[str, ...]] = {
    ORDERS: ORDERS_COLUMNS,
    TRADES: TRADES_COLUMNS,
    FUNDING: FUNDING_COLUMNS,
    POSITIONS_OPEN: POSITIONS_OPEN_COLUMNS,
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
}

FILL_EVENT = "fill"
FILL_IDS_SEPARATOR = ";"


@dataclass(frozen=True, slots=True)
class Row:
    """One formatted CSV line bound for the day file of its own timestamp."""

    family: str
    day: date
    line: str
    key: str  # idempotency key ("" = none); its meaning depends on family and event
    ts: datetime


def file_name(family: str, day: date) -> str:
    return f"{family}_{day.isoformat()}.csv"


def header_line(family: str) -> str:
    return format_line(COLUMNS[family])


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
    values = (
        iso(fill.ts), FILL_EVENT, fill.symbol, fill.order_id, fill.client_order_id, fill.fill_id,
        fill.side.value, plain(fill.contracts), plain(fill.contract_size), plain(fill.coins),
        plain(fill.price), plain(fill.fee), fill.fee_ccy, _b(fill.reduce_only),
        fill.liquidity.value, fill.origin.value,
        fill.pos_side, fill.category, fill.algo_id, plain(fill.fill_pnl), plain(fill.liq_penalty),
        "", "", "", "",
    )
    return Row(ORDERS, _day(fill.ts), format_line(values), fill.fill_id, fill.ts)


def order_row(update: OrderUpdate) -> Row:
    event = update.state.value
    values = (
        iso(update.ts), event, update.symbol, update.order_id, update.client_order_id, "",
        update.side.value, plain(update.contracts), plain(update.contract_size),
        plain(update.contracts * update.contract_size), plain(update.price), "", "",
        _b(update.reduce_only), "", update.origin.value,
        "", "", "", "", "", update.order_type, plain(update.filled_contracts),
        plain(update.avg_price), update.message,
    )
    return Row(ORDERS, _day(update.ts), format_line(values), order_key(update.order_id, event),
               update.ts)


def close_row(close: CloseResult) -> Row:
    values = (
        iso(close.closed_at), close.symbol, close.position_id, close.side.value,
        close.reason.value, plain(close.size_before), plain(close.size_closed),
        plain(close.size_after), plain(close.contracts_closed), plain(close.contract_size),
        plain(close.entry_price), plain(close.exit_price), plain(close.gross_pnl),
        plain(close.fee), plain(close.liq_penalty), plain(close.funding), plain(close.net_pnl),
        iso(close.opened_at), close.source.value,
        close.close_key, FILL_IDS_SEPARATOR.join(close.fill_ids),
    )
    return Row(TRADES, _day(close.closed_at), format_line(values), close.close_key,
               close.closed_at)


def funding_row(payment: FundingPayment) -> Row:
    values = (
        iso(payment.ts), payment.symbol, payment.position_id, plain(payment.rate),
        plain(payment.position_contracts), plain(payment.position_coins),
        plain(payment.mark_price), plain(payment.amount), payment.ccy, payment.bill_id,
    )
    return Row(FUNDING, _day(payment.ts), format_line(values), payment.bill_id, payment.ts)


def position_row(snap: PositionSnapshot) -> Row:
    values = (
        iso(snap.ts), snap.symbol, snap.position_id, snap.side.value, plain(snap.contracts),
        plain(snap.coins), plain(snap.entry_price), plain(snap.mark_price),
        plain(snap.unrealized_pnl), plain(snap.funding_accrued), plain(snap.leverage),
        snap.margin_mode, plain(snap.liq_price),
        snap.pos_side, plain(snap.contract_size), iso(snap.opened_at),
    )
    return Row(POSITIONS_OPEN, _day(snap.ts), format_line(values), "", snap.ts)


def parse_ts(text: str) -> datetime:
    """The journal's ISO-8601 'Z' timestamps back to aware UTC datetimes."""
    return datetime.fromisoformat(text).astimezone(UTC)
