"""perpdesk core: exchange-agnostic trading domain, ledger, journal, venues and simulator.

Nothing under ``core`` may import ``console`` or ``textual``: the engine must run headless and be
testable without a terminal (enforced by tests/unit/repo/test_layering.py).
"""
