"""The pre-trade check chain: the rules a command must pass before an order leaves the engine.

Why a chain: risk limits (max size, max notional, daily loss stop) each become one small class
appended here, run in order, first refusal wins, instead of growing branches in ``submit``.

Rule: a command that can only reduce exposure (a close, a reduce-only order, a cancel) is never
refused by a risk check, so no limit can trap a trader in a position. Only *gates* (checks with
``gate = True``: the engine's mode, not a limit) see reducing commands too; today those are the
read-only mode, the command's origin and the journal being writable, exactly as before.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from core.events import (
    CancelOrder,
    CloseAll,
    ClosePosition,
    Command,
    KillSwitch,
    PauseStrategy,
    PlaceOrder,
    ResumeTrading,
    SetTpSl,
)
from core.model import Origin

if TYPE_CHECKING:
    from core.engine.context import EngineContext


class PreTradeCheck(Protocol):
    """One rule; returns why ``command`` is refused, or None to let it through."""

    @property
    def gate(self) -> bool:
        """True for a mode of the engine that refuses reducing commands too (not a risk limit)."""
        ...

    def __call__(self, command: Command, origin: Origin) -> str | None: ...


def is_reducing(command: Command) -> bool:
    """Can ``command`` only reduce exposure? Such commands pass every non-gate check.

    Trading-control commands place no entry: pause, resume and the kill switch change the state
    (the kill switch only cancels and closes), a TP/SL move places reduce-only algos."""
    if isinstance(command, PlaceOrder):
        return command.reduce_only
    return isinstance(command, ClosePosition | CloseAll | CancelOrder | PauseStrategy
                      | ResumeTrading | KillSwitch | SetTpSl)


class CheckChain:
    """The checks in order; ``refusal`` runs them and returns the first refusal."""

    def __init__(self, checks: Iterable[PreTradeCheck] = ()) -> None:
        self._checks: list[PreTradeCheck] = list(checks)

    def add(self, check: PreTradeCheck) -> None:
        """Append a check (a risk limit goes here); it runs after the ones already added."""
        self._checks.append(check)

    def refusal(self, command: Command, origin: Origin) -> str | None:
        reducing = is_reducing(command)
        for check in self._checks:
            if reducing and not check.gate:
                continue
            why = check(command, origin)
            if why is not None:
                return why
        return None


class ReadOnlyGate:
    """Read-only mode: the console is a viewer, no command reaches the exchange."""

    gate = True

    def __init__(self, ctx: EngineContext) -> None:
        self._ctx = ctx

    def __call__(self, command: Command, origin: Origin) -> str | None:
        return "read-only mode: trading commands are disabled" if self._ctx.read_only else None


class OriginGate:
    """Commands come from the console or a strategy; other origins describe exchange-side events."""

    gate = True

    def __call__(self, command: Command, origin: Origin) -> str | None:
        if origin in (Origin.CONSOLE, Origin.STRATEGY):
            return None
        return f"commands come from the console or a strategy, not {origin.value}"


class JournalGate:
    """A trade we could not journal is a trade the trader cannot account for: refuse until the
    journal writes again (its pending rows are kept and land then, once)."""

    gate = True

    def __init__(self, ctx: EngineContext) -> None:
        self._ctx = ctx

    def __call__(self, command: Command, origin: Origin) -> str | None:
        error = self._ctx.journal.error
        if error is None or isinstance(command, KillSwitch | PauseStrategy):
            return None  # stopping trading must work even when the journal cannot write
        self._ctx.check_journal()
        return (f"trading refused: the journal cannot write ({error}) — "
                "free disk space; pending rows are kept and written when it can")


def default_chain(ctx: EngineContext) -> CheckChain:
    return CheckChain([ReadOnlyGate(ctx), OriginGate(), JournalGate(ctx)])
