"""schemathesis against /openapi.json: every operation, inputs valid by the schema and invalid
ones, a bounded number of examples with a fixed seed. No response may be a 5xx; every 4xx is
JSON with an `error` naming the problem.

In process (schemathesis' ASGI transport) on the permission workspace, with the admin key
(accepted everywhere) and the slash-command token configured, so every route is reached."""

from __future__ import annotations

import json

import pytest

from api.app import create_app
from ingest.pipeline import ingest_path
from tests.integration.test_permissions import workspace

ADMIN = "fuzz-admin-key-0123456789"
EXAMPLES = 25


@pytest.fixture
def schema(make_runtime, tmp_path):
    import schemathesis

    rt = make_runtime(api_key="fuzz-key-0123456789", admin_api_key=ADMIN,
                      mattermost_public_url="https://chat.example.com",
                      mattermost_command_token="fuzz-command-token")
    ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(rt))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_5xx_and_every_4xx_names_its_error(schema):
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    seen: dict[str, dict[int, int]] = {}
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]

    def fuzz(op, mode, counts: dict[int, int]) -> None:
        @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case):
            r = case.call(headers={"Authorization": f"Bearer {ADMIN}"})
            counts[r.status_code] = counts.get(r.status_code, 0) + 1
            where = (f"{case.method} {case.formatted_path} query={case.query} "
                     f"body={case.body!r:.200}")
            if r.status_code >= 500:
                failures.append(f"{r.status_code} for {where}: {r.text[:300]}")
            elif r.status_code >= 400:
                try:
                    body = json.loads(r.content)
                except ValueError:
                    body = None
                if not (isinstance(body, dict) and isinstance(body.get("error"), str)
                        and body["error"]):
                    failures.append(f"{r.status_code} without a JSON error for {where}: "
                                    f"{r.text[:300]}")

        run()

    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(op, mode, seen.setdefault(op.label, {}))
            except Unsatisfiable:
                # nothing to make invalid (no parameters, no body): negative cases cannot exist
                assert mode == GenerationMode.NEGATIVE, op.label
    total = sum(sum(c.values()) for c in seen.values())
    print(f"\nschemathesis: {total} requests over {len(seen)} operations")
    for label, counts in sorted(seen.items()):
        print(f"  {label}: {dict(sorted(counts.items()))}")
    assert not failures, "\n".join(dict.fromkeys(failures))
