"""RiskLine: one line under the header with the strategy and the risk guard at a glance.

What it shows: the strategy's name and the trading state (running / paused /
halted), today's net PnL against the daily loss limit, the exposure against the max total
notional, and the last risk event (before the exposure when paused or halted: the reason matters
more then). Each is an item that never splits (console/widgets/pack.py): at 80 columns the line
takes a second row rather than cropping a number or a reason at the right edge. It is fed from the engine's RiskStatus events through the
feed buffer (last write wins, drained on the UI timer), never one message per tick.

Why hidden until the first RiskStatus: an engine without a risk guard (a test double, a viewer)
has nothing to say here, and the 80x24 layout keeps its row for the panes.
"""
from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from console.widgets.fmt import MONEY_PLACES, fmt_num, tone
from console.widgets.pack import pack
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
    RiskLine { height: auto; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.status: RiskStatus | None = None
        self._packed: tuple[tuple[RiskStatus, int], list[Text]] | None = None
        self.display = False

    def show(self, status: RiskStatus | None) -> None:
        """Display ``status`` (re-rendered only when it differs from what is shown; laid out
        again only when it needs another number of lines)."""
        if status is None or status == self.status:
            return
        before = self._lines(self.content_region.width) if self.status is not None else None
        self.status = status
        if not self.display:
            self.display = True
        after = self._lines(self.content_region.width) if self.is_mounted else None
        self.refresh(layout=before is None or after is None or len(after) != len(before))

    def _lines(self, width: int) -> list[Text]:
        """The items packed whole into lines of ``width`` (at 80 columns: two lines, never an
        item cut at the right edge)."""
        if self.status is None or not self.is_mounted:
            return []
        key = (self.status, max(1, width))
        if self._packed is None or self._packed[0] != key:  # the status ticks with the mark
            self._packed = (key, pack(self.items(), key[1]))
        return self._packed[1]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self._lines(width)))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._packed = None  # a new theme: the items' styles change

    def render(self) -> Text:
        return Text("\n", no_wrap=True, overflow="crop").join(self._lines(self.content_region.width))

    def items(self) -> list[Text]:
        """One Text per item: strategy and state, net against the loss limit, exposure against
        the cap, the last risk event (before the exposure when paused or halted)."""
        s = self.status
        if s is None:
            return []
        label = self.get_component_rich_style("risk--label")
        strategy = Text(no_wrap=True)
        strategy.append("Strategy ", label)
        strategy.append(f"{s.strategy} ")
        stopped = (not s.strategy_running and s.strategy != "none"
                   and s.state is TradingState.RUNNING)
        shown = "stopped" if stopped else s.state.value
        strategy.append(shown.upper() if s.state is TradingState.HALTED else shown,
                        self.get_component_rich_style(_STATE_STYLE[s.state]))
        net = Text(no_wrap=True)
        net.append("Net ", label)
        net.append(fmt_num(s.today_net, MONEY_PLACES, sign=True),
                   self.get_component_rich_style(f"risk--{tone(s.today_net)}"))
        floor = loss_floor(s.daily_loss_limit)
        if floor is not None:
            net.append(f" / limit {fmt_num(floor, MONEY_PLACES, sign=True)}", label)
        expo = Text(no_wrap=True)
        expo.append("Expo ", label)
        expo.append(fmt_num(s.exposure, MONEY_PLACES))
        if s.max_total_notional is not None:
            expo.append(f" / {fmt_num(s.max_total_notional, MONEY_PLACES)}", label)
        last = Text(no_wrap=True)
        if s.last_event:
            last.append("Last ", label)
            last.append(s.last_event)
        urgent = s.state is not TradingState.RUNNING  # why it stopped matters more then
        ordered = [strategy, net, last, expo] if urgent else [strategy, net, expo, last]
        return [t for t in ordered if t.plain]
