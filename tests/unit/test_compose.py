"""docker-compose.yml cannot run here (no Docker engine): check it by reading."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

# the port each service listens on inside the network
LISTENS = {"postgres": 5432, "chroma": 8000, "mattermost": 8065, "openops": 8080, "local-llm": 11434}
SERVICE_KEYS = {"image", "build", "restart", "environment", "volumes", "ports", "depends_on",
                "healthcheck", "command", "profiles", "entrypoint", "user", "env_file"}
TOP_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets"}
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR; $$ is a literal $
INTERPOLATION = re.compile(r"(?<!\$)\$(?:\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def env_example() -> dict[str, str | None]:
    """Variables of .env.example: value when set, None when only mentioned in a comment."""
    found: dict[str, str | None] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"\s*(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m and not m.group(1):
            found[m.group(2)] = m.group(3).strip()
        elif m:
            found.setdefault(m.group(2), None)
    return found


def interpolations() -> list[tuple[str, str | None, str]]:
    """(variable, operator, default-or-message) for every interpolation in the compose file."""
    out = []
    for m in INTERPOLATION.finditer((ROOT / "docker-compose.yml").read_text()):
        out.append((m.group(1) or m.group(4), m.group(2), m.group(3) or ""))
    return out


def resolve(value: str) -> str:
    """A value as compose would see it with an empty .env: ${X:-d} -> d, ${X} -> X."""
    return INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else
                             (m.group(1) or m.group(4)), value)


def host_port(url: str) -> tuple[str | None, int | None]:
    u = urlsplit(url)
    return u.hostname, u.port


def test_services_and_dependencies_are_consistent():
    doc = compose()
    services = doc["services"]
    assert {"postgres", "chroma", "mattermost", "openops", "local-llm"} <= set(services)
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert "healthcheck" in services[dep], f"{dep} needs a healthcheck for {name}"
            assert cond == {"condition": "service_healthy"}, f"{name} -> {dep}: wait until healthy"
        for vol in svc.get("volumes", []):
            named = vol.split(":")[0]
            if named.startswith((".", "/")):
                if named.startswith("."):
                    assert (ROOT / named).exists(), f"{name} mounts {named}, which does not exist"
            else:
                assert named in doc.get("volumes", {}), f"volume {named} is not declared"


def test_only_known_compose_keys():
    doc = compose()
    assert set(doc) <= TOP_KEYS, set(doc) - TOP_KEYS
    for name, svc in doc["services"].items():
        assert set(svc) <= SERVICE_KEYS, f"{name}: unexpected keys {set(svc) - SERVICE_KEYS}"
        assert "image" in svc or "build" in svc, name
        assert isinstance(svc.get("environment", {}), dict), f"{name}: environment as a mapping"
        for key, value in svc.get("environment", {}).items():
            # compose wants strings (a bare `true` or number is rejected or reformatted)
            assert isinstance(value, str), f"{name}.{key}: quote {value!r}"
        hc = svc.get("healthcheck")
        if hc:
            test = hc["test"]
            assert isinstance(test, str) or test[0] in ("CMD", "CMD-SHELL"), f"{name}: {test}"
        if "profiles" in svc:
            assert isinstance(svc["profiles"], list) and svc["profiles"], name
        image = svc.get("image", "")
        if image and name != "openops":
            tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
            assert tag and tag != "latest", f"{name}: pin the image tag ({image})"


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
    assert host_port(env["OPENOPS_MATTERMOST_URL"]) == ("mattermost", 8065)


def test_every_url_in_an_environment_names_a_service_on_its_port():
    services = compose()["services"]
    for name, svc in services.items():
        for key, value in svc.get("environment", {}).items():
            for url in re.findall(r"[a-z][a-z0-9+]*://[^\s\"']+", resolve(value)):
                host, port = host_port(url)
                if host in ("localhost", "127.0.0.1"):
                    continue  # the public URL's default: the browser's localhost
                assert host in services, f"{name}.{key}: {host} is not a service"
                assert port == LISTENS[host], f"{name}.{key}: {host} listens on {LISTENS[host]}"


def test_every_openops_variable_is_a_real_setting():
    fields = {f"OPENOPS_{name.upper()}" for name in Settings.model_fields}
    for svc in compose()["services"].values():
        for key in svc.get("environment", {}):
            if key.startswith("OPENOPS_"):
                assert key in fields, f"{key} is not a setting"


def test_openops_runs_without_the_bot_until_its_tokens_are_set():
    env = compose()["services"]["openops"]["environment"]
    for key in ("OPENOPS_MATTERMOST_TOKEN", "OPENOPS_MATTERMOST_COMMAND_TOKEN",
                "OPENOPS_LLM_BASE_URL", "OPENOPS_LLM_API_KEY"):
        assert env[key] == f"${{{key}:-}}", f"{key} should default to empty"
    assert env["OPENOPS_LLM"] == "${OPENOPS_LLM:-extractive}"
    assert env["OPENOPS_MATTERMOST_PUBLIC_URL"] == \
        compose()["services"]["mattermost"]["environment"]["MM_SERVICESETTINGS_SITEURL"]
    assert "OPENOPS_ADMIN_API_KEY" in env


def test_every_interpolated_variable_is_in_env_example():
    documented = env_example()
    used = interpolations()
    assert used
    for var, op, _ in used:
        assert var in documented, f"${{{var}}} is not in .env.example"
        if op in (":?", "?"):
            # `cp .env.example .env` must give a file compose accepts
            assert documented[var], f"{var} is required: give it a value in .env.example"
    for var in ("POSTGRES_PASSWORD", "MM_DB_PASSWORD", "MATTERMOST_SITE_URL", "OPENOPS_API_KEY",
                "OPENOPS_ADMIN_API_KEY", "OPENOPS_MATTERMOST_TOKEN",
                "OPENOPS_MATTERMOST_COMMAND_TOKEN", "OPENOPS_LLM", "OPENOPS_LLM_BASE_URL",
                "OPENOPS_LLM_API_KEY"):
        assert var in {v for v, _, _ in used}, f"{var} is documented but not used"


def test_mattermost_database_is_the_one_the_init_script_creates():
    services = compose()["services"]
    mm = services["mattermost"]["environment"]
    pg = services["postgres"]
    assert mm["MM_SQLSETTINGS_DRIVERNAME"] == "postgres"
    source = mm["MM_SQLSETTINGS_DATASOURCE"]
    # the same password variable reaches the init script and Mattermost
    secret = re.match(r"postgres://mmuser:(\$\{MM_DB_PASSWORD[^}]*\})@", source)
    assert secret, source
    assert pg["environment"]["MM_DB_PASSWORD"] == secret.group(1)
    u = urlsplit(source.replace(secret.group(1), "secret"))
    assert (u.scheme, u.username, u.password) == ("postgres", "mmuser", "secret")
    assert (u.hostname, u.port, u.path) == ("postgres", LISTENS["postgres"], "/mattermost")
    assert "sslmode=disable" in u.query
    mounts = [v.split(":") for v in pg["volumes"]]
    scripts = [src for src, dst, *_ in mounts if dst.startswith("/docker-entrypoint-initdb.d/")]
    assert scripts == ["./deploy/postgres-init.sh"]
    script = (ROOT / "deploy" / "postgres-init.sh").read_text()
    assert re.search(r"CREATE ROLE mmuser LOGIN", script)
    assert re.search(r"PASSWORD :'mm_password'", script)
    assert '-v mm_password="$MM_DB_PASSWORD"' in script
    assert re.search(r"CREATE DATABASE mattermost OWNER mmuser", script)
    assert "ON_ERROR_STOP=1" in script
    assert services["mattermost"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_mattermost_settings_the_bot_needs():
    mm = compose()["services"]["mattermost"]
    env = mm["environment"]
    assert mm["image"].startswith("mattermost/mattermost-team-edition:")
    major = int(mm["image"].rsplit(":", 1)[1].split(".")[0])
    assert major in (10, 11)
    for key in ("ENABLEBOTACCOUNTCREATION", "ENABLEUSERACCESSTOKENS", "ENABLECOMMANDS"):
        assert env[f"MM_SERVICESETTINGS_{key}"] == "true", key
    assert any(p.split(":")[-1] == "8065" for p in mm["ports"])
    assert "8065" in mm["healthcheck"]["test"][-1]
    for path in ("config", "data", "logs", "plugins", "client/plugins", "bleve-indexes"):
        assert any(v.split(":")[1] == f"/mattermost/{path}" for v in mm["volumes"]), path
    site = resolve(env["MM_SERVICESETTINGS_SITEURL"])
    assert host_port(site) == ("localhost", 8065)


def test_mattermost_may_call_the_slash_command_url():
    services = compose()["services"]
    allowed = re.split(r"[\s,]+",
                       services["mattermost"]["environment"]
                       ["MM_SERVICESETTINGS_ALLOWEDUNTRUSTEDINTERNALCONNECTIONS"].strip())
    # the URL `openops mattermost setup` suggests, and the README uses
    cli = (ROOT / "api" / "cli.py").read_text()
    urls = re.findall(r"\"(http://[\w.-]+:\d+/mattermost/command)\"", cli)
    assert urls, "api/cli.py no longer suggests a slash-command URL"
    for url in urls:
        host, port = host_port(url)
        assert host in services and host in allowed, f"{host} is not allowed: {allowed}"
        assert port == LISTENS[host]
    assert "openops" in allowed


def test_local_llm_is_optional_and_nobody_depends_on_it():
    services = compose()["services"]
    llm = services["local-llm"]
    assert llm["profiles"] == ["local-llm"]
    assert llm["image"].startswith("ollama/ollama:")
    assert any(v.split(":")[1] == "/root/.ollama" for v in llm["volumes"])
    assert llm["environment"]["OLLAMA_HOST"].endswith(f":{LISTENS['local-llm']}")
    for name, svc in services.items():
        assert "local-llm" not in svc.get("depends_on", {}), f"{name} must not depend on local-llm"
        if name != "local-llm":
            assert "profiles" not in svc, f"{name} must start with a plain `docker compose up`"
    # the documented settings point at it
    for text in ((ROOT / "docker-compose.yml").read_text(), (ROOT / ".env.example").read_text()):
        assert "OPENOPS_LLM=openai_compatible:llama3.2" in text
        assert "OPENOPS_LLM_BASE_URL=http://local-llm:11434/v1" in text
        assert "docker compose exec local-llm ollama pull llama3.2" in text


def test_published_ports_do_not_collide():
    seen: dict[str, str] = {}
    for name, svc in compose()["services"].items():
        for p in svc.get("ports", []):
            assert isinstance(p, str), f"{name}: quote the port mapping {p!r}"
            parts = p.split(":")
            assert len(parts) in (2, 3), f"{name}: publish as HOST:CONTAINER ({p})"
            host = ":".join(parts[:-1])
            assert host not in seen, f"{name} and {seen[host]} both publish {host}"
            seen[host] = name
            assert int(parts[-1]) == LISTENS[name], f"{name} listens on {LISTENS[name]}"


def test_published_port_matches_the_serve_command():
    svc = compose()["services"]["openops"]
    port = svc["command"][svc["command"].index("--port") + 1]
    assert any(p.endswith(f":{port}") for p in svc["ports"])
    assert f"--port\", \"{port}\"" in (ROOT / "Dockerfile").read_text()
    assert int(port) == LISTENS["openops"]


@pytest.mark.parametrize("text, expect", [
    ("${A:-x} $B ${C:?m} $${D} ${E}", [("A", ":-", "x"), ("B", None, ""), ("C", ":?", "m"),
                                       ("E", None, "")]),
])
def test_interpolation_parser(text, expect):
    got = [(m.group(1) or m.group(4), m.group(2), m.group(3) or "")
           for m in INTERPOLATION.finditer(text)]
    assert got == expect
