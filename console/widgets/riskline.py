"""RiskLine: one line under the header with the strategy and the risk guard at a glance.

What it shows (issue 14): the strategy's name and the trading state (running / paused /
halted), today's net PnL against the daily loss limit, the exposure against the max total
notional, and the last risk event (before the exposure when paused or halted: at 80 columns the
line is cropped at the right, and then the reason matters more). It is fed from the engine's RiskStatus events through the
feed buffer (last write wins, drained on the UI timer), never one message per tick.

Why hidden until the first RiskStatus: an engine without a risk guard (a test double, a viewer)
has nothing to say here, and the 80x24 layout keeps its row for the panes.
"""
from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from console.widgets.fmt import MONEY_PLACES, fmt_num, tone
from core.events import RiskStatus, TradingState

_STATE_STYLE = {TradingState.RUNNING: "risk--good", TradingState.PAUSED: "risk--warn",
                TradingState.HALTED: "risk--bad"}


def loss_floor(limit: Decimal | None) -> Decimal | None:
    """The daily loss limit as the PnL it stops at (written positive in config: 100 -> -100)."""
    return None if limit is None else -abs(limit)


class RiskLine(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "risk--label", "risk--good", "risk--warn", "risk--bad", "risk--up", "risk--down",
        "risk--flat",
    }
    DEFAULT_CSS = """
    RiskLine { height: 1; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.status: RiskStatus | None = None
        self.display = False

    def show(self, status: RiskStatus | None) -> None:
        """Display ``status`` (re-rendered only when it differs from what is shown)."""
        if status is None or status == self.status:
            return
        self.status = status
        if not self.display:
            self.display = True
        self.refresh()

    def render(self) -> Text:
        s = self.status
        if s is None:
            return Text()
        label = self.get_component_rich_style("risk--label")
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append("Strategy ", label)
        out.append(f"{s.strategy} ")
        stopped = (not s.strategy_running and s.strategy != "none"
                   and s.state is TradingState.RUNNING)
        shown = "stopped" if stopped else s.state.value
        out.append(shown.upper() if s.state is TradingState.HALTED else shown,
                   self.get_component_rich_style(_STATE_STYLE[s.state]))
        out.append("  Net ", label)
        out.append(fmt_num(s.today_net, MONEY_PLACES, sign=True),
                   self.get_component_rich_style(f"risk--{tone(s.today_net)}"))
        floor = loss_floor(s.daily_loss_limit)
        if floor is not None:
            out.append(f" / limit {fmt_num(floor, MONEY_PLACES, sign=True)}", label)
        urgent = s.state is not TradingState.RUNNING  # why it stopped matters more then
        if urgent:
            self._last(out, s, label)
        out.append("  Expo ", label)
        out.append(fmt_num(s.exposure, MONEY_PLACES))
        if s.max_total_notional is not None:
            out.append(f" / {fmt_num(s.max_total_notional, MONEY_PLACES)}", label)
        if not urgent:
            self._last(out, s, label)
        return out

    @staticmethod
    def _last(out: Text, s: RiskStatus, label: Style) -> None:
        if s.last_event:
            out.append("  Last ", label)
            out.append(s.last_event)
