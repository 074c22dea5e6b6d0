"""The CI entry point and the fast test target do what they say: .ci/run refuses to go on without
the browser the playground test needs, and `make test-fast` (-m "not slow") really leaves tests
out."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_ci(tmp_path: Path, *, chromium: bool) -> tuple[subprocess.CompletedProcess, Path]:
    """.ci/run with a PATH of only what it needs: no apt-get (nothing is installed), a stub
    `make` that records its call and the CI variable, and a stub chromium if asked."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "dirname", "id", "ls", "head", "env"):
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    marker = tmp_path / "make-called"
    (bindir / "make").write_text(f'#!{shutil.which("bash")}\necho "$@ CI=$CI" > {marker}\n')
    (bindir / "make").chmod(0o755)
    if chromium:
        (bindir / "chromium").write_text(f"#!{shutil.which('bash')}\nexit 0\n")
        (bindir / "chromium").chmod(0o755)
    p = subprocess.run([str(bindir / "bash"), str(ROOT / ".ci" / "run")], capture_output=True,
                       text=True, env={"PATH": str(bindir), "HOME": str(tmp_path)}, timeout=60)
    return p, marker


def test_ci_fails_when_the_browser_cannot_be_installed(tmp_path):
    p, marker = _run_ci(tmp_path, chromium=False)
    assert p.returncode != 0 and not marker.exists(), p.stdout + p.stderr
    assert "chromium" in p.stderr and "apt-get install chromium" in p.stderr


def test_ci_runs_the_whole_suite_with_ci_set_when_the_browser_is_there(tmp_path):
    p, marker = _run_ci(tmp_path, chromium=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert marker.read_text().split() == ["test", "CI=true"]


@pytest.mark.slow  # collects the whole suite: 24 s measured
def test_test_fast_leaves_the_slow_tests_out():
    makefile = (ROOT / "Makefile").read_text()
    fast = re.search(r"^test-fast:.*\n\t(.*)$", makefile, re.MULTILINE)
    assert fast and '-m "not slow"' in fast.group(1)
    p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                        "no:cacheprovider", "-m", "not slow", "tests"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    summary = re.search(r"(\d+)/(\d+) tests collected \((\d+) deselected\)", p.stdout)
    assert summary, p.stdout[-2000:] + p.stderr[-2000:]
    kept, total, left_out = map(int, summary.groups())
    assert left_out >= 10 and kept + left_out == total  # 20 of 263 here
    assert "test_faults.py" not in p.stdout  # the fault tests are all slow
