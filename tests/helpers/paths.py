"""Where the tests find the repository, the recorded fixtures and the scripts they run as processes,
wherever in tests/ the test file sits."""
from __future__ import annotations

from pathlib import Path

HELPERS = Path(__file__).resolve().parent
TESTS = HELPERS.parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"


