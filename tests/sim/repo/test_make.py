"""The Makefile: `make run` installs what running needs, the test tools only come with `make test`."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _planned(target: str, venv: Path) -> list[str]:
    """The commands `make TARGET` would run on a machine without the venv (`make -n`: none run)."""
    proc = subprocess.run(["make", "-n", "-C", str(REPO), f"VENV={venv}", target],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if "pip install" in line]


def test_make_run_installs_no_test_tools(tmp_path: Path) -> None:
    installs = _planned("run", tmp_path / "v")
    assert any(line.rstrip().endswith("install -q -e .") for line in installs), installs
    assert not any("[test]" in line for line in installs), installs


@pytest.mark.parametrize("target", ["test", "lint", "typecheck"])
def test_make_test_installs_the_test_tools(tmp_path: Path, target: str) -> None:
    installs = _planned(target, tmp_path / "v")
    assert any("'.[test]'" in line for line in installs), installs
