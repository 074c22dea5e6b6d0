"""ruff is the project's linter; keep the tree clean (bench/ holds scripts, checked by `make lint`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is missing: `make install` installs the test extras"
    p = subprocess.run([ruff, "check", "rag", "ingest", "api", "bot", "tests"], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.slow  # measured: 31-40 s
def test_mypy_is_clean_on_the_core():
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    assert mypy, "mypy is missing: `make install` installs the test extras"
    p = subprocess.run([mypy, "rag"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
