"""Shared fixtures: everything real — the embedding model, Chroma, SQLite/PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rag.runtime import Runtime, offline_environment
from rag.settings import Settings

offline_environment()
ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("OPENOPS_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def embedder():
    from rag.embeddings import Embedder

    return Embedder()


def _pg_database(base_url: str):
    """Create a throw-away database on the test server; returns (url, drop)."""
    import psycopg

    name = f"openops_t_{uuid.uuid4().hex[:10]}"
    conninfo = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = conninfo.rsplit("/", 1)[0] + "/" + name

    def drop() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


DB_PARAMS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=DB_PARAMS)
def db_kind(request):
    return request.param


@pytest.fixture
def make_runtime(tmp_path, embedder, request):
    """Build runtimes on fresh state, sharing the (expensive) embedding model."""
    drops = []
    made = []

    def factory(db: str = "sqlite", chroma_url: str | None = None, **overrides) -> Runtime:
        home = tmp_path / f"home{len(made)}"
        database_url = None
        if db == "postgresql":
            if not PG_URL:
                pytest.skip("OPENOPS_TEST_DATABASE_URL is not set")
            database_url, drop = _pg_database(PG_URL)
            drops.append(drop)
        settings = Settings(home=home, database_url=database_url, chroma_url=chroma_url,
                            collection=f"t{uuid.uuid4().hex[:12]}", _env_file=None, **overrides)
        rt = Runtime(settings)
        rt.__dict__["embedder"] = embedder
        made.append(rt)
        return rt

    yield factory
    for rt in made:
        rt.close()
    for drop in drops:
        drop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {last}")


def sse_events(url: str, body: dict, headers: dict, timeout: float = 60) -> list[tuple[str, object]]:
    """POST ``body`` with ``"stream": true`` and read the Server-Sent Events: (event, data)."""
    import json

    import httpx

    events = []
    with httpx.stream("POST", url, json={**body, "stream": True}, headers=headers,
                      timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    return events


@contextlib.contextmanager
def serve_app(app):
    """Run an ASGI app with uvicorn on a free loopback port; yields its base URL."""
    import threading

    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz")
        yield base
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` server on a free loopback port."""
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None:
        pytest.fail("the `chroma` command is missing: `make install` installs chromadb")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen([exe, "run", "--path", str(path), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
