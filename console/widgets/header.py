"""Header: account equity, margin, PnL of the day and the link state, in one or two lines.

Why a plain render() widget: it is a couple of lines that change at most once per UI flush, and
it only re-renders when the displayed values actually differ.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from core.events import AccountSnapshot, LinkState, StreamStatus

from console.widgets.fmt import COST_PLACES, MONEY_PLACES, fmt_num, tone

_LINK_ORDER = (LinkState.DISCONNECTED, LinkState.CONNECTING, LinkState.RESYNCING,
               LinkState.CONNECTED)


@dataclass(frozen=True, slots=True)
class HeaderState:
    account: AccountSnapshot | None = None
    upnl: Decimal | None = None  # sum over the positions pane when the account has none
    realized: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    funding: Decimal = Decimal(0)
    link: LinkState | None = None
    latency_ms: float | None = None
    read_only: bool = False


def link_summary(statuses: dict[str, StreamStatus]) -> tuple[LinkState | None, float | None]:
    """The worst state over all streams, and the worst latency measured while connected."""
    if not statuses:
        return None, None
    worst = min((s.state for s in statuses.values()), key=_LINK_ORDER.index)
    lat = [s.latency_ms for s in statuses.values() if s.latency_ms is not None]
    return worst, (max(lat) if lat else None)


class HeaderBar(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "header--label", "header--up", "header--down", "header--flat", "header--bad",
        "header--good", "header--warn",
    }
    DEFAULT_CSS = """
    HeaderBar { height: auto; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.state = HeaderState()

    def show(self, state: HeaderState) -> None:
        if state != self.state:
            self.state = state
            self.refresh(layout=True)

    def render(self) -> Text:
        s = self.state
        label = self.get_component_rich_style("header--label")
        text = Text(no_wrap=False, overflow="fold")
        ccy = s.account.ccy if s.account else "USDT"

        def item(name: str, value: str, style: str = "") -> None:
            if text:
                text.append("  ")
            if name:  # NBSP: a label never wraps away from its value
                text.append(f"{name}\u00a0", label)
            text.append(value, self.get_component_rich_style(style) if style else "")

        def money(name: str, value: Decimal | None, places: int, signed: bool = True) -> None:
            item(name, fmt_num(value, places, sign=signed),
                 f"header--{tone(value)}" if signed and value is not None else "")

        acct = s.account
        money("Equity", acct.equity if acct else None, MONEY_PLACES, signed=False)
        text.append(f" {ccy}", label)
        money("Avail", acct.available if acct else None, MONEY_PLACES, signed=False)
        money("uPnL", s.upnl, MONEY_PLACES)
        money("Today", s.realized, MONEY_PLACES)
        money("Fees", s.fees, COST_PLACES, signed=False)
        money("Fund", s.funding, COST_PLACES)
        if s.link is None:
            item("Link", "-", "header--warn")
        else:
            good = s.link is LinkState.CONNECTED
            state = "live" if good else s.link.value
            if good and s.latency_ms is not None:
                state += f"\u00a0{s.latency_ms:.0f}ms"
            item("●", state, "header--good" if good else (
                "header--bad" if s.link is LinkState.DISCONNECTED else "header--warn"))
        if s.read_only:
            item("", "READ-ONLY", "header--warn")
        return text
