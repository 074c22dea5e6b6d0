"""The HTTP API over real HTTP (uvicorn on a loopback port), on a real index."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from api.app import create_app
from ingest.pipeline import ingest_path
from tests.conftest import ROOT, free_port, serve_app, wait_http
from tests.integration.test_permissions import FACTS, workspace

KEY = "test-key-123"


@pytest.fixture
def server(make_runtime, tmp_path):
    # permalinks only: no Mattermost server to verify people's tokens with
    rt = make_runtime(api_key=KEY, mattermost_public_url="https://chat.example.com")
    ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    with serve_app(create_app(rt)) as base:
        yield base


def auth(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_healthz(server):
    r = httpx.get(server + "/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["chunks"] > 0
    assert r.json()["query_encoder"] in ("onnx", "building", "torch", "not loaded")


def test_search_returns_documented_fields_and_respects_permissions(server):
    r = httpx.post(server + "/v1/search", headers=auth(),
                   json={"user": "alice.a", "query": "database password rotation", "k": 3})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 3
    top = results[0]
    assert FACTS["eng-private"] in top["text"]
    for field in ("text", "score", "post_id", "thread_id", "channel_id", "channel_name",
                  "team_name", "channel_type", "source", "permalink"):
        assert field in top
    assert top["channel_name"] == "eng-private" and top["channel_type"] == "P"
    assert top["permalink"] == f"https://chat.example.com/acme/pl/{top['post_id']}"
    r = httpx.post(server + "/v1/search", headers=auth(),
                   json={"user": "bob.b", "query": "database password rotation", "k": 8})
    assert all(FACTS["eng-private"] not in x["text"] for x in r.json()["results"])


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic abc"}])
def test_missing_or_wrong_key_is_401(server, headers):
    r = httpx.post(server + "/v1/search", headers=headers,
                   json={"user": "alice.a", "query": "x"})
    assert r.status_code == 401
    assert "OPENOPS_API_KEY" in r.json()["error"]


@pytest.mark.parametrize("body,field", [
    ({"query": "x"}, "user"),
    ({"user": "alice.a"}, "query"),
    ({"user": "alice.a", "query": "x", "k": 0}, "k"),
    ({"user": "alice.a", "query": "x", "k": "many"}, "k"),
    ({"user": "alice.a", "query": ""}, "query"),
])
def test_invalid_body_is_422_naming_the_field(server, body, field):
    r = httpx.post(server + "/v1/search", headers=auth(), json=body)
    assert r.status_code == 422
    assert any(p["field"] == field for p in r.json()["detail"]), r.json()
    assert field in r.json()["error"]


def test_unknown_user_is_404_with_a_reason(server):
    r = httpx.post(server + "/v1/search", headers=auth(), json={"user": "ghost", "query": "x"})
    assert r.status_code == 404 and "unknown user" in r.json()["error"]


def test_malformed_json_is_422(server):
    r = httpx.post(server + "/v1/search", headers={**auth(), "Content-Type": "application/json"},
                   content=b"{not json")
    assert r.status_code == 422 and "error" in r.json()


def test_openapi_documents_search(server):
    spec = httpx.get(server + "/openapi.json").json()
    assert "/v1/search" in spec["paths"]


@pytest.mark.slow  # measured: 133 s
def test_cli_search_json_is_the_api_document(server, make_runtime, tmp_path):
    env = {**os.environ}
    rt_home = tmp_path / "cli"
    env.update(OPENOPS_HOME=str(rt_home))
    subprocess.run([sys.executable, "-m", "api.cli", "ingest", str(workspace().write(
        tmp_path / "w.jsonl"))], check=True, env=env, cwd=ROOT, capture_output=True)
    out = subprocess.run([sys.executable, "-m", "api.cli", "search", "--as", "bob.b", "--k", "2",
                          "--json", "lasagna on fridays"], check=True, env=env, cwd=ROOT,
                         capture_output=True, text=True).stdout
    import json

    doc = json.loads(out)
    assert len(doc["results"]) == 2 and FACTS["town-square"] in doc["results"][0]["text"]


def test_serve_refuses_to_start_without_a_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENOPS_API_KEY"}
    env["OPENOPS_HOME"] = str(tmp_path)
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--port", str(free_port())],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "OPENOPS_API_KEY" in p.stderr and "--insecure-local" in p.stderr
    assert time.time() - t0 < 30


@pytest.mark.slow  # measured: 105 s
def test_insecure_local_binds_loopback_without_auth(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENOPS_API_KEY"}
    env["OPENOPS_HOME"] = str(tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as sink:
        p = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--insecure-local",
                              "--host", "0.0.0.0", "--port", str(port)], env=env, cwd=tmp_path,
                             stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=90)
        r = httpx.post(f"http://127.0.0.1:{port}/v1/search", json={"user": "x", "query": "y"},
                       timeout=30)
        assert r.status_code == 404  # no auth needed; the user is unknown in an empty mirror
        # the server's warm-up moves questions to the ONNX export of the model, then takes the
        # start-up objects out of garbage collection
        deadline = time.time() + 60
        route = None
        while time.time() < deadline and (route != "onnx" or "froze" not in log.read_text()):
            route = httpx.get(f"http://127.0.0.1:{port}/healthz").json()["query_encoder"]
            time.sleep(0.2)
        assert route == "onnx"
    finally:
        p.terminate()
        p.wait(20)
    out = log.read_text()
    assert "127.0.0.1" in out
    assert re.search(r"froze [1-9]\d{4,} start-up objects", out), out


def test_serve_names_what_sign_in_still_needs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENOPS_")}
    env.update(OPENOPS_HOME=str(tmp_path), OPENOPS_OAUTH_CLIENT_ID="c" * 26,
               OPENOPS_OAUTH_CLIENT_SECRET="s" * 26)
    p = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--port", str(free_port())],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "OPENOPS_MATTERMOST_URL" in p.stderr and "OPENOPS_SESSION_SECRET" in p.stderr
