"""OrderEntryScreen: a market or limit order, in contracts, optionally reduce-only.

Returns a PlaceOrder (validated against the instrument's lot, minimum and tick sizes) or None.
The engine and the exchange still have the final word; their answer arrives as a notification.
"""
from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from console.actions import Scope
from console.bindings import bindings, key_hint
from console.numbers import SizeError, parse_positive
from console.screens.warm import is_prepared
from core.events import PlaceOrder
from core.model import Instrument, OrderSide, OrderType
from core.money import quantize_down


def build_order(inst: Instrument, side: str, order_type: str, size: str, price: str,
                reduce_only: bool, unit_name: str = "contracts") -> PlaceOrder:
    """The PlaceOrder for the form's fields, or SizeError naming what to fix. ``unit_name`` is
    what a size is counted in (the coin, where contracts are coins)."""
    contracts = parse_positive(size, "size")
    if quantize_down(contracts, inst.lot_size) != contracts:
        raise SizeError(f"size must be a multiple of {inst.lot_size.normalize():f} {unit_name}")
    if contracts < inst.min_size:
        raise SizeError(f"size below the minimum ({inst.min_size.normalize():f} {unit_name})")
    px: Decimal | None = None
    if order_type == "limit":
        px = parse_positive(price, "price")
        if quantize_down(px, inst.tick_size) != px:
            raise SizeError(f"price must be a multiple of the tick {inst.tick_size.normalize():f}")
    return PlaceOrder(inst.symbol, OrderSide(side), contracts, OrderType(order_type), px, reduce_only)


class OrderEntryScreen(ModalScreen["PlaceOrder | None"]):
    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.ORDER)
    AUTO_FOCUS = "#size"  # on every showing where nothing is focused yet

    def __init__(self, instruments: dict[str, Instrument] | None = None, symbol: str | None = None,
                 *, coins_only: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self.instruments: dict[str, Instrument] = {}
        self.coins_only = False
        self.symbol: str | None = None
        self._options_shown: list[tuple[str, str]] = []  # the symbol choices composed or set last
        self.show(instruments or {}, symbol, coins_only=coins_only)

    def show(self, instruments: dict[str, Instrument], symbol: str | None = None, *,
             coins_only: bool = False) -> None:
        """The form of the next showing of this (kept) screen: the instruments and the symbol
        chosen; every other field goes back to its default when it is shown."""
        self.instruments = instruments
        self.coins_only = coins_only  # contracts are coins (Bybit): sizes are typed in the coin
        self.symbol = symbol if symbol in instruments else next(iter(instruments), None)

    def on_screen_resume(self) -> None:
        """Each showing starts from the form ``show`` was given, whatever was typed before
        (before this showing's first frame: the screen draws on its update timer, later)."""
        if not is_prepared(self):  # still being composed, from what it was given
            return
        self._fill()

    def _symbols(self) -> list[tuple[str, str]]:
        # a form prepared before the instruments are known holds one blank choice, never shown:
        # order entry is refused until they are loaded (console/trading.py)
        return [(s, s) for s in self.instruments] or [("", "")]

    def _fill(self) -> None:
        symbol = self.query_one("#symbol", Select)
        options = self._symbols()
        if options != self._options_shown:
            symbol.set_options(options)
            self._options_shown = options
        symbol.value = self.symbol if self.symbol is not None else options[0][1]
        self.query_one("#side", Select).value = "buy"
        self.query_one("#type", Select).value = "market"
        size = self.query_one("#size", Input)
        size.value = ""
        size.placeholder = "size in coins" if self.coins_only else "contracts"
        price = self.query_one("#price", Input)
        price.value, price.disabled = "", True
        self.query_one("#reduce", Checkbox).value = False
        self.query_one("#order-error", Static).update("")
        self.set_focus(size)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            place = key_hint(self.app, "order_place", "ctrl+s")
            cancel = key_hint(self.app, "order_cancel", "Esc")
            yield Label(f"New order (Enter or {place} places, {cancel} cancels)",
                        classes="dialog-title")
            options = self._options_shown = self._symbols()
            with Horizontal(classes="form-row"):
                yield Select(options, value=self.symbol or options[0][1],
                             allow_blank=False, id="symbol")
                yield Select([("buy", "buy"), ("sell", "sell")], value="buy",
                             allow_blank=False, id="side")
                yield Select([("market", "market"), ("limit", "limit")], value="market",
                             allow_blank=False, id="type")
            with Horizontal(classes="form-row"):
                yield Input(placeholder="size in coins" if self.coins_only else "contracts", id="size")
                yield Input(placeholder="limit price", id="price", disabled=True)
                yield Checkbox("reduce-only", id="reduce")
            yield Static("", id="order-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"Place ({place})", variant="primary", id="place")
                yield Button(f"Cancel ({cancel})", id="cancel")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "type":
            self.query_one("#price", Input).disabled = event.value != "limit"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_place()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "place":
            self.action_place()
        else:
            self.dismiss(None)

    def action_place(self) -> None:
        error = self.query_one("#order-error", Static)
        symbol = self.query_one("#symbol", Select).value
        inst = self.instruments.get(str(symbol))
        if inst is None:
            error.update("✗ choose a symbol")
            return
        try:
            order = build_order(inst, str(self.query_one("#side", Select).value),
                                str(self.query_one("#type", Select).value),
                                self.query_one("#size", Input).value,
                                self.query_one("#price", Input).value,
                                self.query_one("#reduce", Checkbox).value,
                                inst.base_ccy or "coins" if self.coins_only else "contracts")
        except SizeError as exc:
            error.update(f"✗ {exc}")
            return
        self.dismiss(order)

    def action_cancel(self) -> None:
        self.dismiss(None)
