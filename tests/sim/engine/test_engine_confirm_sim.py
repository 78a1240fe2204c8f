"""The unconfirmed-orders list on a running engine stack."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.confirm.unconfirmed import UnconfirmedClose, load, save
from tests.helpers.confirm_helpers import close

pytestmark = pytest.mark.timeout(20)


async def test_a_symlinked_unconfirmed_list_is_refused_not_followed(tmp_path: Path) -> None:
    """unconfirmed_closes.json planted as a symbolic link: the engine's start stops with one line
    naming it, as for a journal day file; the file it points at is neither read nor touched."""
    from core.journal import JournalError
    from tests.helpers.engine_helpers import close_rig, make_rig

    row = close(contracts="100", before="1", gross="1000", fee="60")
    elsewhere = tmp_path / "elsewhere.json"
    save(elsewhere, [UnconfirmedClose.of(row, "net")])
    before = elsewhere.read_bytes()
    rig = await make_rig(tmp_path)
    try:
        await rig.start_engine()
        await rig.stop_engine()
        link = rig.journal_dir / "unconfirmed_closes.json"
        link.symlink_to(elsewhere)
        with pytest.raises(JournalError) as exc:
            load(link)
        assert "is a symbolic link; refusing to follow it" in exc.value.message
        with pytest.raises(JournalError) as exc:
            await rig.start_engine()
        assert str(link) in exc.value.message and "symbolic link" in exc.value.message
        assert "\n" not in exc.value.message
        assert link.is_symlink() and elsewhere.read_bytes() == before
    finally:
        rig.engine = None  # the start failed: nothing of it to stop but the journal
        await close_rig(rig)
