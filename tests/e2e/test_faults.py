"""Faults, for real: `kill -9` of `openops ingest` and of `openops serve` in the middle of a
re-index job, a Chroma server restarted mid-ingest, PostgreSQL stopped under the API. After each,
per-channel post and chunk counts equal an uninterrupted run on a fresh store: no duplicates, no
gaps. Every process here is real (the CLI, `chroma run`, a private PostgreSQL); the figures the
tests print go into the README."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rag.runtime import Runtime
from rag.settings import Settings
from tests.conftest import ROOT
from tests.workspace import WS

pytestmark = pytest.mark.slow

CHANNELS = 48
POSTS = 40  # per channel, 40 min apart: one chunk each, ~1,900 chunks, two embedding batches


def big_ws() -> WS:
    ws = WS().team("acme")
    names = [f"stream-{i:02d}" for i in range(CHANNELS)]
    for name in names:
        ws.channel("acme", name)
    ws.user("ann.lee", {"acme": names})
    ws.user("ben.kim", {"acme": names[::2]})
    for i, name in enumerate(names):
        for n in range(POSTS):
            ws.post("acme", name, "ann.lee" if n % 3 else "ben.kim",
                    f"Workstream {i} update {n}: deploy {n * 7 % 13} of service-{i} finished, "
                    f"next check at {n % 24:02d}:00.", at=n * 40)
    return ws


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENOPS_")}
    return {**env, "OPENOPS_HOME": str(home), "PYTHONPATH": str(ROOT), **extra}


def openops(*args: str, env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900, **kw)


def counts(settings: Settings) -> dict[str, tuple[int, int, int]]:
    """Per channel name: (live posts in the store, chunks in Chroma, chunk_count recorded),
    and the whole index's chunk ids must be unique (Chroma ids are, so compare totals too)."""
    from sqlalchemy import func, select

    from rag.db import Channel, Post

    rt = Runtime(settings)
    try:
        with rt.db.session() as s:
            names = dict(s.execute(select(Channel.id, Channel.name)).all())
            posts = dict(s.execute(select(Post.channel_id, func.count()).where(
                Post.delete_at == 0).group_by(Post.channel_id)).all())
            recorded = dict(s.execute(select(Channel.id, Channel.chunk_count)).all())
            dirty = list(s.scalars(select(Channel.name).where(Channel.dirty.is_(True))))
        metas = rt.index.collection.get(include=["metadatas"])
        chunks = Counter(m["channel_id"] for m in metas["metadatas"])
        assert len(set(metas["ids"])) == len(metas["ids"])
        assert dirty == [], f"channels left dirty: {dirty}"
        return {names[c]: (posts.get(c, 0), chunks.get(c, 0), recorded.get(c, 0))
                for c in names}
    finally:
        rt.close()


def wait_for(predicate, what: str, timeout: float = 600, proc: subprocess.Popen | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def indexed_channels(db_path: Path) -> tuple[int, int]:
    """(channels already indexed, channels still dirty), read from the SQLite mirror."""
    if not db_path.exists():
        return 0, 0
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
        try:
            done, dirty = con.execute(
                "select coalesce(sum(dirty = 0 and chunk_count > 0), 0), "
                "coalesce(sum(dirty = 1), 0) from channels").fetchone()
        finally:
            con.close()
        return int(done), int(dirty)
    except sqlite3.Error:  # -- not created yet, or locked for a moment --
        return 0, 0


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return big_ws().write(tmp_path_factory.mktemp("export") / "import.jsonl")


@pytest.fixture(scope="module")
def reference(export, tmp_path_factory) -> dict[str, tuple[int, int, int]]:
    """An uninterrupted `openops ingest` on a fresh store."""
    home = tmp_path_factory.mktemp("reference")
    done = openops("ingest", str(export), env=cli_env(home))
    assert done.returncode == 0, done.stderr
    ref = counts(Settings(home=home, _env_file=None))
    assert len(ref) == CHANNELS and all(p == POSTS and c == r > 0 for p, c, r in ref.values())
    return ref


def test_kill_9_during_ingest_then_resume_gives_the_uninterrupted_counts(export, reference,
                                                                         tmp_path, capsys):
    home = tmp_path / "killed"
    env = cli_env(home)
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "ingest", str(export)], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done, dirty = wait_for(lambda: (lambda d: d if d[0] > 0 and d[1] > 0 else None)(
            indexed_channels(home / "openops.db")), "some channels indexed", proc=proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    resumed = openops("ingest", str(export), env=env)
    assert resumed.returncode == 0, resumed.stderr
    after = counts(Settings(home=home, _env_file=None))
    with capsys.disabled():
        print(f"\n  kill -9 of `openops ingest` with {done} channels indexed and {dirty} dirty; "
              f"resumed: {sum(c for _, c, _ in after.values())} chunks, "
              f"{sum(p for p, _, _ in after.values())} posts in {len(after)} channels "
              f"(uninterrupted: {sum(c for _, c, _ in reference.values())} chunks, "
              f"{sum(p for p, _, _ in reference.values())} posts)")
    assert after == reference
