"""Every account at a glance: the live accounts watch (LISTEN/NOTIFY + catch-up) and the console's
Accounts screen, against a real PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from console.app import build_app
from console.screens.accounts import AccountsScreen
from core.settings.config import Settings, StoreSettings
from core.store.queries import AccountRow
from core.store.watch import AccountsWatch
from tests.helpers.console_helpers import T0, FakeEngine, screen_text
from tests.helpers.engine_helpers import wait_for
from tests.helpers.pg_helpers import StoreDb

pytestmark = pytest.mark.timeout(90)

PUT = ("SELECT perpdesk.put_status($1, 'sim', 'live', $2, 1000.5, -2.25, 3.125, 0.5, 0, 1, "
       "'none', 'running', 'private:connected', 0, 0, now() - make_interval(secs => $3))")


async def _put(db: StoreDb, engine: str, uid: str, age_s: float = 0.0) -> None:
    conn = await asyncpg.connect(db.writer)
    try:
        await conn.execute(PUT, engine, uid, age_s)
    finally:
        await conn.close()


async def test_watch_is_live_marks_stale_rows_and_catches_up_after_a_reconnect(store_db: StoreDb) -> None:
    seen: list[list[AccountRow]] = []
    errors: list[str] = []
    watch = AccountsWatch(store_db.reader, seen.append, errors.append)
    watch.start()
    try:
        await wait_for(lambda: bool(seen), what="first (catch-up) query")
        await _put(store_db, "desk-a", "u1")
        await wait_for(lambda: any(r.engine == "desk-a" for r in seen[-1]), timeout=3,
                       what="notified row")
        await _put(store_db, "desk-old", "u2", age_s=60)  # an engine that stopped writing
        await wait_for(lambda: len(seen[-1]) == 3, timeout=3, what="second engine")
        rows = {r.engine: r for r in seen[-1]}
        assert not rows["desk-a"].stale and rows["desk-a"].state == "running"
        assert rows["desk-old"].stale and rows["desk-old"].state.startswith("STALE")
        assert rows["TOTAL"].equity == rows["desk-a"].equity * 2 and rows["TOTAL"].state == "1 stale"

        store_db.server.stop()
        try:
            await wait_for(lambda: bool(errors), timeout=10, what="the loss is said")
        finally:
            store_db.server.start()
        await _put(store_db, "desk-b", "u3")  # while the watch was away: no notification for it
        await wait_for(lambda: watch.connects >= 2 and any(r.engine == "desk-b" for r in seen[-1]),
                       timeout=15, what="catch-up after the reconnect")
    finally:
        await watch.stop()


async def test_accounts_key_opens_the_live_accounts_screen(tmp_path: Path, store_db: StoreDb) -> None:
    await _put(store_db, "desk-a", "u1")
    settings = Settings(store=StoreSettings(read_url=store_db.reader), config_path=tmp_path / "c.toml")
    app = build_app(FakeEngine(), settings, clock=lambda: T0)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AccountsScreen)
        for _ in range(100):
            await pilot.pause(0.05)
            if "desk-a" in screen_text(app):
                break
        text = screen_text(app)
        assert "desk-a" in text and "1000.5" in text and "TOTAL" in text
        await _put(store_db, "desk-b", "u2")
        for _ in range(100):
            await pilot.pause(0.05)
            if "desk-b" in screen_text(app):
                break
        assert "desk-b" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, AccountsScreen)
