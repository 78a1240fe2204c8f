"""An engine's link to the store: its shipper and its status row, started and stopped together."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger

from core.journal.binding import AccountId
from core.store.connect import safe_url
from core.store.rows import Scope
from core.store.shipper import Shipper, StoreState
from core.store.status import StatusPublisher

if TYPE_CHECKING:
    from core.engine import Engine
    from core.journal import Journal
    from core.settings.config import Settings


@dataclass
class StoreLink:
    shipper: Shipper
    status: StatusPublisher

    @property
    def state(self) -> StoreState:
        return self.shipper.state

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.status.stop()
        await self.shipper.stop()


async def start_store(settings: Settings, engine: Engine, journal: Journal,
                      account: AccountId) -> StoreLink:
    """Start shipping ``journal`` and writing the status row; returns at once (no connection is
    awaited: an unreachable store is a state shown in the header, not a failure)."""
    url = settings.store.url
    assert url is not None
    scope = Scope.of(settings.engine_name, account)
    shipper = Shipper(journal, url, scope)
    journal.on_durable = shipper.wake
    await shipper.start()

    def risk() -> tuple[str, str]:
        st = engine.control.status()
        strategy = st.strategy if st.strategy == "none" else \
            f"{st.strategy} {'running' if st.strategy_running else 'stopped'}"
        return strategy, st.state.value

    status = StatusPublisher(engine, url, scope, lambda: shipper.state, risk=risk)
    await status.start()
    logger.info(f"STORE shipping journal {journal.directory} as engine {scope.engine!r} "
                f"({scope.venue} {scope.mode} {scope.account}) to {safe_url(url)}")
    return StoreLink(shipper, status)
