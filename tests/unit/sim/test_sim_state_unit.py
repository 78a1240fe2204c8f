"""The simulator's saved state and its binding to a journal, without starting it."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.journal.binding import ACCOUNT_FILE, AccountId, JournalAccountError, bind_journal, read_binding
from core.service.runner import SIM_STATE_FILE, run_headless
from tests.helpers.sim_state import _nan_cash, _settings

pytestmark = pytest.mark.timeout(120)


def test_a_journal_with_only_headers_is_bound_at_first_use(tmp_path: Path) -> None:
    j = tmp_path / "j"
    j.mkdir()
    (j / "orders_2026-03-05.csv").write_text("ts,event\n")
    bind_journal(j, AccountId("okx", "111"))
    assert read_binding(j) == AccountId("okx", "111")
    (j / ACCOUNT_FILE).unlink()
    (j / "orders_2026-03-05.csv").write_text("ts,event\n2026-03-05T00:00:00.000Z,fill\n")
    with pytest.raises(JournalAccountError) as exc:
        bind_journal(j, AccountId("okx", "111"))
    assert exc.value.exit_code == 2 and "\n" not in exc.value.message
    bind_journal(j, AccountId("okx", "111"), record=False)  # reconcile only reads: it goes on
    assert read_binding(j) is None


def test_bind_journal_records_once_and_refuses_another(tmp_path: Path) -> None:
    j = tmp_path / "j"
    bind_journal(j, AccountId("okx", "111", sandbox=True))
    assert (j / ACCOUNT_FILE).stat().st_mode & 0o777 == 0o600
    bind_journal(j, AccountId("okx", "111", sandbox=True))  # the same account again: fine
    for other in (AccountId("okx", "222", True), AccountId("okx", "111", False), AccountId("sim", "111", True)):
        with pytest.raises(JournalAccountError) as exc:
            bind_journal(j, other)
        assert exc.value.exit_code == 2 and "\n" not in exc.value.message
        assert "okx demo account uid 111" in exc.value.message and other.label() in exc.value.message
    (j / ACCOUNT_FILE).write_text("garbage")
    with pytest.raises(JournalAccountError, match=ACCOUNT_FILE):
        bind_journal(j, AccountId("okx", "111", sandbox=True))


def test_embedded_start_refuses_a_nan_state_file_with_one_line(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(tmp_path)
    settings.journal.dir.mkdir(parents=True)
    _nan_cash(settings.journal.dir / SIM_STATE_FILE)
    capsys.readouterr()
    assert run_headless(settings, 0.5) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and SIM_STATE_FILE in lines[0] and "accounts[0].cash" in lines[0], out.err
    assert "Traceback" not in out.out + out.err
