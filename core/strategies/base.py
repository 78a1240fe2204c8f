"""The strategy slot: one coroutine that trades through the engine until it is cancelled.

Why so small: the engine already owns connection, journal and positions; a strategy only needs the
engine's read API (positions, account, instruments, subscribe) and ``submit``. The runner starts
``run`` as a task and cancels it at shutdown; an exception in a strategy is logged and ends the
strategy, never the engine.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import PerpdeskError

if TYPE_CHECKING:
    from core.engine import Engine


class StrategyError(PerpdeskError):
    """A strategy cannot start (unknown name, bad parameter); ``message`` is one plain line."""


class Strategy(ABC):
    """Base class: subclasses set ``name`` and implement ``run``."""

    name: ClassVar[str] = "strategy"

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = dict(params or {})

    @abstractmethod
    async def run(self, engine: Engine) -> None:
        """Trade until cancelled. Use ``engine.submit(cmd, origin=Origin.STRATEGY)``."""
