"""Commands: what the console and strategies ask of the exchange, after the pre-trade checks.

Never raises: a failed command is ``CommandResult(ok=False, message)`` plus a Notice, whether the
chain refused it, the exchange said no, or a bug hit it.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loguru import logger

from core.engine import validate
from core.engine.checks import CheckChain, default_chain
from core.events import (
    CancelOrder,
    CloseAll,
    ClosePosition,
    Command,
    CommandResult,
    KillSwitch,
    PauseStrategy,
    PlaceOrder,
    ResumeTrading,
    SetTpSl,
)
from core.model import Origin
from core.money import plain
from core.venue.base import VenueError

if TYPE_CHECKING:
    from decimal import Decimal

    from core.engine.book import Book
    from core.engine.context import EngineContext
    from core.model import Instrument
    from core.risk.control import TradingControl


class Commands:
    """Runs commands for the engine; ``checks`` is the pre-trade chain every command passes first."""

    def __init__(self, ctx: EngineContext, book: Book, control: TradingControl,
                 checks: CheckChain | None = None) -> None:
        self._ctx = ctx
        self._book = book
        self._control = control
        self.checks = checks if checks is not None else default_chain(ctx)

    async def submit(self, command: Command, origin: Origin) -> CommandResult:
        why = validate.refusal(command, self._ctx.venue.instruments)  # sizes and prices, once
        if why is None:
            why = self.checks.refusal(command, origin)
        if why is not None:
            return self._ctx.refuse(why)
        # an entry counts for the limits from here (no await since the checks) until it fills or
        # is canceled, so entries sent together, or one right after another, see each other
        flight = self._control.guard.flight
        ticket = (flight.reserve(command) if isinstance(command, PlaceOrder) and not command.reduce_only
                  else None)
        result: CommandResult | None = None
        try:
            result = await self._dispatch(command, origin)
            return result
        except VenueError as exc:  # the exchange said no, or could not be reached
            return self._ctx.refuse(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug: logged in full, one plain line shown
            logger.exception(f"command {command!r} failed")
            return self._ctx.refuse(f"{type(command).__name__} failed: {exc or type(exc).__name__}")
        finally:
            if ticket is not None:
                if result is not None and result.ok and result.order_ids:
                    flight.placed(ticket, result.order_ids[0])
                else:
                    flight.failed(ticket)

    async def _dispatch(self, command: Command, origin: Origin) -> CommandResult:
        if isinstance(command, PlaceOrder):
            return await self._place(command, origin)
        if isinstance(command, ClosePosition):
            return await self._close(command, origin)
        if isinstance(command, CloseAll):
            return await self._close_all(origin)
        if isinstance(command, CancelOrder):
            await self._ctx.venue.cancel_order(command.symbol, command.order_id)
            return CommandResult(True, f"order {command.order_id} on {command.symbol} canceled",
                                 (command.order_id,))
        if isinstance(command, PauseStrategy):
            return self._control.pause()
        if isinstance(command, ResumeTrading):
            if origin is not Origin.CONSOLE:  # a strategy must never lift its own halt or pause
                return self._ctx.refuse("only the trader can resume trading (from the console)")
            return self._control.resume()
        if isinstance(command, KillSwitch):
            return await self._control.kill()
        if isinstance(command, SetTpSl):
            return await self._control.set_tp_sl(command)
        return self._ctx.refuse(f"unknown command {type(command).__name__}")

    def _amount(self, inst: Instrument, contracts: Decimal) -> str:
        """A size as the trader reads it: "5 contracts (0.05 BTC)", or "0.05 BTC" alone where the
        venue's contracts are its coins (Bybit)."""
        coins = f"{plain(inst.to_coins(contracts))} {inst.base_ccy or 'coins'}"
        if self._ctx.venue.capabilities.contracts_are_coins:
            return coins
        return f"{plain(contracts)} contracts ({coins})"

    async def _place(self, cmd: PlaceOrder, origin: Origin) -> CommandResult:
        venue = self._ctx.venue
        inst = venue.instruments.get(cmd.symbol)
        if inst is None:
            return self._ctx.refuse(f'symbol "{cmd.symbol}" is not traded here '
                                   f"({', '.join(venue.instruments) or 'none'})")
        order_id = await venue.place_order(cmd, origin)
        what = f"{cmd.side.value} {self._amount(inst, cmd.contracts)} {cmd.symbol} {cmd.order_type}"
        extras = "".join([f" tp {plain(cmd.take_profit)}" if cmd.take_profit is not None else "",
                          f" sl {plain(cmd.stop_loss)}" if cmd.stop_loss is not None else ""])
        logger.info(f"ORDER PLACED {order_id} {what}{extras} origin {origin.value}")
        return CommandResult(True, f"order {order_id} placed: {what}{extras}", (order_id,))

    async def _close(self, cmd: ClosePosition, origin: Origin) -> CommandResult:
        inst = self._ctx.venue.instruments.get(cmd.symbol)
        if inst is None:
            return self._ctx.refuse(f'symbol "{cmd.symbol}" is not traded here')
        if cmd.position_id is not None:
            changed = self._life_changed(cmd)
            if changed is not None:
                return self._ctx.refuse(changed)
        open_contracts = self._book.open_contracts(cmd.symbol, cmd.pos_side)
        if open_contracts == 0:
            return self._ctx.refuse(f"no open {cmd.symbol} {cmd.pos_side} position to close")
        contracts = cmd.contracts
        if contracts is not None and contracts >= open_contracts:
            contracts = None
        size = open_contracts if contracts is None else contracts
        order_id = await self._ctx.venue.close_position(cmd.symbol, cmd.pos_side, contracts, origin)
        what = (f"{'closing all of' if contracts is None else 'closing'} {self._amount(inst, size)} "
                f"of {cmd.symbol} {cmd.pos_side}")
        logger.info(f"CLOSE SENT {order_id} {what} origin {origin.value}")
        return CommandResult(True, what, (order_id,))

    def _life_changed(self, cmd: ClosePosition) -> str | None:
        """Why the life ``cmd`` was confirmed for is not the one open now; None if it still is."""
        pos = self._ctx.ledger.position(cmd.symbol, cmd.pos_side)
        if pos is not None and pos.position_id == cmd.position_id:
            return None
        now_open = ("it is closed now" if pos is None else
                    f"a new {pos.side.value} of {plain(pos.contracts)} contracts is open now "
                    f"({pos.position_id})")
        return (f"{cmd.symbol} {cmd.pos_side} changed since you confirmed: the position "
                f"{cmd.position_id} you chose to close is gone, {now_open}; nothing sent")

    async def _close_all(self, origin: Origin) -> CommandResult:
        keys = {(p.symbol, p.pos_side) for p in self._ctx.ledger.positions()}
        keys |= {k for k, p in self._book.pushes.items() if p.contracts != 0}
        if not keys:
            return CommandResult(True, "no open positions")
        results = await asyncio.gather(
            *(self.submit(ClosePosition(symbol, pos_side), origin)
              for symbol, pos_side in sorted(keys)))
        ok = all(r.ok for r in results)
        ids = tuple(i for r in results for i in r.order_ids)
        message = "; ".join(r.message for r in results)
        return CommandResult(ok, message, ids)
