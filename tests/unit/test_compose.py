"""docker-compose.yml cannot run here (no Docker engine): check it by reading."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_dependencies_are_consistent():
    doc = compose()
    services = doc["services"]
    assert {"postgres", "chroma", "openops"} <= set(services)
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert "healthcheck" in services[dep], f"{dep} needs a healthcheck for {name}"
        for vol in svc.get("volumes", []):
            named = vol.split(":")[0]
            if not named.startswith((".", "/")):
                assert named in doc.get("volumes", {}), f"volume {named} is not declared"


def test_openops_points_at_the_services_it_names():
    services = compose()["services"]
    env = services["openops"]["environment"]
    pg = services["postgres"]["environment"]
    url = env["OPENOPS_DATABASE_URL"]
    m = re.match(r"postgresql://(\w+):[^@]+@(\w+):(\d+)/(\w+)$", url)
    assert m, url
    user, host, port, db = m.groups()
    assert (user, db) == (pg["POSTGRES_USER"], pg["POSTGRES_DB"])
    assert host == "postgres" and port == "5432"
    chroma = re.match(r"http://(\w+):(\d+)$", env["OPENOPS_CHROMA_URL"])
    assert chroma and chroma.group(1) == "chroma" and chroma.group(2) == "8000"
    assert services["chroma"]["image"].endswith("1.5.9")  # the client version we pin
    assert "OPENOPS_API_KEY" in env  # the server refuses to start without it


def test_every_openops_variable_is_a_real_setting():
    fields = {f"OPENOPS_{name.upper()}" for name in Settings.model_fields}
    for svc in compose()["services"].values():
        for key in svc.get("environment", {}):
            if key.startswith("OPENOPS_"):
                assert key in fields, f"{key} is not a setting"


def test_published_port_matches_the_serve_command():
    svc = compose()["services"]["openops"]
    port = svc["command"][svc["command"].index("--port") + 1]
    assert any(p.endswith(f":{port}") for p in svc["ports"])
    assert f"--port\", \"{port}\"" in (ROOT / "Dockerfile").read_text()
