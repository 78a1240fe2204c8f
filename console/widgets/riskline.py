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

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from rich.text import Text
from textual.geometry import Region, Size
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
        self._view: RiskView | None = None  # what is drawn (the text, not the status)
        self._packed: tuple[tuple[RiskView, int], list[Text]] | None = None
        self.display = False

    def show(self, status: RiskStatus | None) -> None:
        """Display ``status``. Only what would be shown counts: the status carries its figures
        to more digits than are shown, and a refresh for the same text cost a repaint and the
        compositor's work on every flush. Only the lines that differ are refreshed; laid out
        again only when it needs another number of lines."""
        if status is None or status == self.status:
            return
        view = risk_view(status)
        if view == self._view:
            self.status = status  # the same text: nothing to draw
            return
        width = max(1, self.content_region.width)
        before = self._lines(width) if self._view is not None else None
        self.status = status
        self._view = view
        if not self.display:
            self.display = True
        after = self._lines(width) if self.is_mounted else None
        if before is None or after is None or len(after) != len(before):
            self.refresh(layout=True)
            return
        changed = [Region(0, y, width, 1) for y, (old, new) in enumerate(zip(before, after, strict=True))
                   if old != new]
        if changed:
            self.refresh(*changed)

    def _lines(self, width: int) -> list[Text]:
        """The items packed whole into lines of ``width`` (at 80 columns: two lines, never an
        item cut at the right edge)."""
        if self._view is None or not self.is_mounted:
            return []
        key = (self._view, max(1, width))
        if self._packed is None or self._packed[0] != key:  # the status ticks with the mark
            try:
                packed = pack(self.items(), key[1])
            except KeyError:  # mounted, its CSS not applied yet: drawn once notify_style_update runs
                return []
            self._packed = (key, packed)
        return self._packed[1]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self._lines(width)))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._packed = None  # a new theme, or the first styles: the items' styles change
        if self._view is not None:
            self.refresh(layout=True)

    def render(self) -> Text:
        return Text("\n", no_wrap=True, overflow="crop").join(self._lines(self.content_region.width))

    def items(self) -> list[Text]:
        """One Text per item: strategy and state, net against the loss limit, exposure against
        the cap, the last risk event (before the exposure when paused or halted)."""
        v = self._view
        if v is None:
            return []
        label = self.get_component_rich_style("risk--label")
        strategy = Text(no_wrap=True)
        strategy.append("Strategy ", label)
        strategy.append(f"{v.strategy} ")
        strategy.append(v.state, self.get_component_rich_style(v.state_style))
        net = Text(no_wrap=True)
        net.append("Net ", label)
        net.append(v.net, self.get_component_rich_style(v.net_style))
        if v.limit:
            net.append(v.limit, label)
        expo = Text(no_wrap=True)
        expo.append("Expo ", label)
        expo.append(v.exposure)
        if v.cap:
            expo.append(v.cap, label)
        last = Text(no_wrap=True)
        if v.last_event:
            last.append("Last ", label)
            last.append(v.last_event)
        ordered = [strategy, net, last, expo] if v.urgent else [strategy, net, expo, last]
        return [t for t in ordered if t.plain]


@dataclass(frozen=True, slots=True)
class RiskView:
    """A RiskStatus as the text the line shows: what show() compares, so a status that differs
    only past the shown places draws nothing."""

    strategy: str
    state: str
    state_style: str
    net: str
    net_style: str
    limit: str
    exposure: str
    cap: str
    last_event: str
    urgent: bool  # paused or halted: why it stopped matters more then


def risk_view(s: RiskStatus) -> RiskView:
    stopped = (not s.strategy_running and s.strategy != "none"
               and s.state is TradingState.RUNNING)
    shown = "stopped" if stopped else s.state.value
    floor = loss_floor(s.daily_loss_limit)
    return RiskView(
        strategy=s.strategy,
        state=shown.upper() if s.state is TradingState.HALTED else shown,
        state_style=_STATE_STYLE[s.state],
        net=fmt_num(s.today_net, MONEY_PLACES, sign=True),
        net_style=f"risk--{tone(s.today_net)}",
        limit="" if floor is None else f" / limit {fmt_num(floor, MONEY_PLACES, sign=True)}",
        exposure=fmt_num(s.exposure, MONEY_PLACES),
        cap=("" if s.max_total_notional is None
             else f" / {fmt_num(s.max_total_notional, MONEY_PLACES)}"),
        last_event=s.last_event,
        urgent=s.state is not TradingState.RUNNING)
