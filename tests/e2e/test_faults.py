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
from tests.workspace import WS, seed_double

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
    """Per channel name: (live posts in the store, chunks in Chroma, chunk_count recorded); no
    channel may be left dirty."""
    rt = Runtime(settings)
    try:
        return runtime_counts(rt)
    finally:
        rt.close()


def runtime_counts(rt: Runtime) -> dict[str, tuple[int, int, int]]:
    from sqlalchemy import func, select

    from rag.db import Channel, Post

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


# ---- a re-index job from the live server, `openops serve` killed mid-job -------------------
ADMIN_KEY = "admin-key"


@pytest.fixture(scope="module")
def double():
    from tests.doubles.mattermost import MattermostDouble

    d = MattermostDouble().start()
    try:
        seed_double(d, big_ws(), creator="ann.lee")
        yield d
    finally:
        d.stop()


class Serve:
    """`openops serve` as a subprocess on a fixed home and port, restartable."""

    def __init__(self, home: Path, double, log: Path):
        from tests.conftest import free_port

        self.home, self.log, self.port = home, log, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = cli_env(home, OPENOPS_API_KEY="api-key", OPENOPS_ADMIN_API_KEY=ADMIN_KEY,
                           OPENOPS_MATTERMOST_URL=double.url,
                           OPENOPS_MATTERMOST_TOKEN=double.bot_token,
                           OPENOPS_MATTERMOST_CA_FILE=double.ca_file)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Serve:
        from tests.conftest import wait_http

        with open(self.log, "a") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port)],
                env=self.env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
        wait_http(self.base + "/healthz", timeout=300)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def job(self, job_id: str) -> dict:
        import httpx

        r = httpx.get(f"{self.base}/v1/jobs/{job_id}",
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def reindex(self) -> str:
        import httpx

        r = httpx.post(self.base + "/v1/reindex", json={"scope": "all"},
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
        assert r.status_code == 202, r.text
        return r.json()["job_id"]

    def wait_done(self, job_id: str) -> dict:
        job = wait_for(lambda: (j := self.job(job_id))["status"] in ("done", "failed",
                                                                      "cancelled") and j,
                       f"job {job_id}", proc=self.proc)
        assert job["status"] == "done", job
        return job


def test_kill_9_during_a_reindex_job_then_restart_resumes_it_to_the_same_counts(
        double, tmp_path, capsys):
    ref = Serve(tmp_path / "uninterrupted", double, tmp_path / "ref.log").start()
    try:
        ref.wait_done(ref.reindex())
    finally:
        ref.stop()
    reference = counts(Settings(home=ref.home, _env_file=None))
    assert len(reference) == CHANNELS and all(p == POSTS and c > 0 for p, c, _ in reference.values())

    serve = Serve(tmp_path / "killed", double, tmp_path / "killed.log").start()
    try:
        job_id = serve.reindex()
        db = serve.home / "openops.db"
        done, dirty = wait_for(lambda: (lambda d: d if d[0] > 0 and d[1] > 0 else None)(
            indexed_channels(db)), "the job half-way", proc=serve.proc)
        serve.kill9()
        mid = _job_row(db, job_id)
        serve.start()  # the job resumes by itself
        job = serve.wait_done(job_id)
    finally:
        serve.stop()
    after = counts(Settings(home=serve.home, _env_file=None))
    with capsys.disabled():
        print(f"\n  kill -9 of `openops serve` during re-index job ({mid}, {done} channels "
              f"indexed, {dirty} dirty); after restart the job ended {job['status']}: "
              f"{sum(c for _, c, _ in after.values())} chunks, "
              f"{sum(p for p, _, _ in after.values())} posts in {len(after)} channels "
              f"(uninterrupted: {sum(c for _, c, _ in reference.values())} chunks, "
              f"{sum(p for p, _, _ in reference.values())} posts)")
    assert after == reference


def _job_row(db: Path, job_id: str) -> str:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        status, progress = con.execute("select status, progress from jobs where id = ?",
                                       (job_id,)).fetchone()
    finally:
        con.close()
    import json

    p = json.loads(progress)
    return f"status {status}, phase {p.get('phase')}, channels {p.get('channels_done')}/" \
           f"{p.get('channels_total')}"


# ---- a Chroma server restarted mid-ingest ---------------------------------------------------
class ChromaServer:
    """`chroma run` on a fixed path and port, so it can be killed and started again."""

    def __init__(self, path: Path):
        import shutil

        from tests.conftest import free_port

        self.exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
        self.path, self.port = path, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ChromaServer:
        from tests.conftest import wait_http

        self.proc = subprocess.Popen(
            [self.exe, "run", "--path", str(self.path), "--host", "127.0.0.1", "--port",
             str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
        wait_http(self.url + "/api/v2/heartbeat")
        return self

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)


def _ingest_until_half_way(export: Path, home: Path, chroma: ChromaServer) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "ingest", str(export)],
                            env=cli_env(home, OPENOPS_CHROMA_URL=chroma.url), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: (lambda d: d[0] > 0 and d[1] > 0)(indexed_channels(home / "openops.db")),
             "some channels indexed", proc=proc)
    return proc


def test_chroma_restarted_mid_ingest_is_retried_and_the_counts_are_exact(export, reference,
                                                                       tmp_path, capsys):
    chroma = ChromaServer(tmp_path / "chroma").start()
    home = tmp_path / "home"
    try:
        proc = _ingest_until_half_way(export, home, chroma)
        chroma.kill9()
        chroma.start()  # down for as long as a restart takes
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out
        after = counts(Settings(home=home, chroma_url=chroma.url, _env_file=None))
    finally:
        chroma.kill9()
    with capsys.disabled():
        print(f"\n  Chroma killed and restarted mid-ingest: the ingest retried and completed, "
              f"{sum(c for _, c, _ in after.values())} chunks (uninterrupted: "
              f"{sum(c for _, c, _ in reference.values())})")
    assert after == reference


def test_chroma_down_mid_ingest_is_a_clear_error_and_a_rerun_completes_exactly(export, reference,
                                                                             tmp_path, capsys):
    chroma = ChromaServer(tmp_path / "chroma").start()
    home = tmp_path / "home"
    try:
        proc = _ingest_until_half_way(export, home, chroma)
        chroma.kill9()
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 1, out
        message = " ".join(out.split())
        with capsys.disabled():
            print(f"\n  Chroma down mid-ingest, `openops ingest` exits 1 saying: "
                  f"{message[message.index('error:'):][:400]}")
        assert "Start the Chroma server again" in message and "run the same command" in message
        chroma.start()
        rerun = openops("ingest", str(export), env=cli_env(home, OPENOPS_CHROMA_URL=chroma.url))
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        after = counts(Settings(home=home, chroma_url=chroma.url, _env_file=None))
    finally:
        chroma.kill9()
    assert after == reference


# ---- PostgreSQL stopped under the API --------------------------------------------------------
class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb) on a free port, never the shared server: run as
    the postgres user when we are root, in a directory it owns."""

    def __init__(self):
        import glob
        import tempfile

        from tests.conftest import free_port

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            pytest.fail("PostgreSQL binaries are missing (/usr/lib/postgresql/*/bin): "
                        "apt-get install postgresql")
        self.bin = Path(bins[-1])
        self.dir = Path(tempfile.mkdtemp(prefix="openops-pg-"))
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.prefix, str(self.bin / tool), *args], check=True,
                       capture_output=True, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        import shutil

        try:
            self.stop("fast")
        except subprocess.CalledProcessError:
            pass  # -- already stopped --
        shutil.rmtree(self.dir, ignore_errors=True)


def test_postgresql_stopped_under_the_api_is_a_503_then_everything_works_again(embedder, tmp_path,
                                                                                capsys):
    import uuid

    import httpx

    from api.app import create_app
    from ingest.pipeline import ingest_path
    from tests.conftest import serve_app

    pg = PrivatePostgres()
    pg.start()
    key = {"Authorization": "Bearer api-key"}
    rt = Runtime(Settings(home=tmp_path, database_url=pg.url, api_key="api-key",
                          collection=f"pg{uuid.uuid4().hex[:10]}", _env_file=None))
    rt.__dict__["embedder"] = embedder
    try:
        ws = big_ws()
        ws.posts = ws.posts[:80]  # two channels are enough here
        ingest_path(rt, ws.write(tmp_path / "ws.jsonl"))
        before = runtime_counts(rt)
        question = {"user": "ann.lee", "query": "when is the next check of service-1", "k": 3}
        with serve_app(create_app(rt)) as base:
            ok = httpx.post(base + "/v1/search", json=question, headers=key, timeout=60)
            assert ok.status_code == 200, ok.text
            pg.stop()  # a crash: no clean shutdown of the sessions
            down = [httpx.post(base + "/v1/search", json=question, headers=key, timeout=60)
                    for _ in range(3)]
            health = httpx.get(base + "/healthz", timeout=60)
            pg.start()
            back = wait_for(lambda: (r := httpx.post(base + "/v1/search", json=question,
                                                     headers=key, timeout=60)).status_code == 200
                            and r, "the API to answer again", timeout=120)
            again = httpx.get(base + "/healthz", timeout=60)
        with capsys.disabled():
            print(f"\n  PostgreSQL stopped under the API: /v1/search -> "
                  f"{[r.status_code for r in down]} {down[0].json()}, /healthz -> "
                  f"{health.status_code} (Retry-After {down[0].headers.get('retry-after')}); "
                  f"started again: {back.status_code}, /healthz {again.status_code}")
        assert all(r.status_code == 503 for r in down) and health.status_code == 503
        assert all("database is not answering" in r.json()["error"] for r in down)
        assert pg.url.split("@")[1] not in down[0].text  # no internal address in the answer
        assert back.json()["results"] == ok.json()["results"]
        assert again.status_code == 200
        assert runtime_counts(rt) == before  # nothing lost
    finally:
        rt.close()
        pg.remove()
