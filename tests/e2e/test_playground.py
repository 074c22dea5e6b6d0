"""The playground page in a real browser (headless Chromium via Playwright) over real HTTP.

Run with the API on the small permission workspace, unauthenticated (--insecure-local): pick a
user, see their scope, watch a cited answer stream in, follow a citation, switch to a user who
may not read the private channel, summarise a channel and ask a follow-up on the summary."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from api.app import create_app
from ingest.pipeline import ingest_path
from tests.conftest import ROOT, serve_app
from tests.integration.test_permissions import FACTS, workspace

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTION = "When does the staging database password rotate?"
# model text is rendered as text: this must show up literally, never as an element
HOSTILE = "Reminder <img src=x onerror=alert(1)> from **IT**: badges are due."
MATTERMOST = "https://chat.example.com"

def _sse(events: list[tuple[str, object]]) -> str:
    return "".join(f"event: {t}\ndata: {json.dumps(d)}\n\n" for t, d in events)


HOSTILE_SSE = _sse([
    *(("token", t) for t in ["Steps:\n1. **Rot", "ate** the key [", "1]\n",
                             "2. Tell <b>ops</b> ![x](http://evil.example/x.png) ",
                             "[link](javascript:alert(1)) [9]\n", "- <script>alert(2)</script>"]),
    ("sources", [{"n": 1, "post_id": "p1", "thread_id": "p1", "channel_id": "c1",
                  "channel_name": "eng-private", "team_name": "acme", "channel_type": "P",
                  "author": "Alice A", "created_at": 1790000000000,
                  "permalink": "javascript:alert(3)", "source": "message", "file_name": None,
                  "text": "The key rotates."}]),
    ("done", {"answer_id": "a1", "conversation_id": "c1", "model": "scripted"}),
])
ARTIFACT = ROOT / "test-artifacts" / "playground.png"

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None


def _skip_without_browser() -> None:
    if sync_playwright is None:
        pytest.skip("the `playwright` Python package is not installed (.ci/run installs it)")
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run installs it)")


@pytest.fixture
def server(make_runtime, tmp_path):
    _skip_without_browser()
    rt = make_runtime(mattermost_url=MATTERMOST)  # no api_key: insecure-local needs none
    ws = workspace()
    ws.post("acme", "town-square", "bob.b", HOSTILE, at=9)
    ingest_path(rt, ws.write(tmp_path / "ws.jsonl"))
    with serve_app(create_app(rt, insecure_local=True)) as base:
        yield base


def _finished(turn) -> None:
    expect(turn.locator(".answer-body")).to_have_attribute("aria-busy", "false", timeout=30_000)
    expect(turn.locator(".error")).to_have_count(0)


@pytest.mark.timeout(120)
def test_playground_end_to_end(server):
    external: list[str] = []
    problems: list[str] = []
    asks: list[dict] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(15_000)

            def gate(route):  # the page must load nothing from anywhere else
                if route.request.url.startswith(server + "/"):
                    route.continue_()
                else:
                    external.append(route.request.url)
                    route.abort()

            page.route("**/*", gate)
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("request", lambda r: r.url.endswith("/v1/ask") and asks.append(
                json.loads(r.post_data or "{}")))

            resp = page.goto(server + "/")
            assert resp and resp.ok
            assert "default-src 'none'" in resp.headers["content-security-policy"]
            expect(page.locator("#mode")).to_contain_text("Local mode")
            expect(page.locator("#keys")).to_be_hidden()  # insecure-local: no key field

            # ---- alice may read eng-private; her answer cites it --------------------------
            expect(page.locator("#user-select option[value='gina.g']")).to_contain_text("guest")
            page.select_option("#user-select", "alice.a")
            expect(page.locator("#user-card")).to_contain_text("@alice.a")
            scope = page.locator("#scope")
            expect(scope).to_contain_text("eng-private")
            expect(scope.locator(".chan-P")).to_contain_text("eng-private")
            expect(scope).to_contain_text("Direct & group messages")

            page.fill("#question", QUESTION)
            page.keyboard.press("Enter")
            turn = page.locator(".turn").last
            answer = turn.locator(".answer-body")
            expect(answer).to_contain_text("Tuesday", timeout=30_000)
            _finished(turn)
            cite = answer.locator("a.cite").first
            expect(cite).to_be_visible()
            card_id = cite.get_attribute("href").lstrip("#")
            card = page.locator(f"[id='{card_id}']")
            cite.click()
            expect(card).to_have_class(re.compile(r"\bhighlight\b"))
            expect(card).to_be_focused()
            expect(card).to_contain_text("eng-private")
            expect(card).to_contain_text(FACTS["eng-private"])
            expect(card).to_contain_text("Alice A")
            link = card.locator("a.permalink")
            assert link.get_attribute("href").startswith(MATTERMOST + "/acme/pl/")
            assert link.get_attribute("rel") == "noopener noreferrer"
            # the only links in an answer: citations to this page and the sources' permalinks
            for href in turn.locator("a").evaluate_all("els => els.map(e => e.href)"):
                assert href.startswith(server + "/#") or href.startswith(MATTERMOST + "/"), href

            turn.get_by_role("button", name="Good answer").click()
            expect(turn.locator(".fb-status")).to_contain_text("Thanks")
            expect(turn.get_by_role("button", name="Good answer")).to_have_attribute(
                "aria-pressed", "true")

            # ---- bob may not: no eng-private in scope, no Tuesday in his answer ------------
            page.select_option("#user-select", "bob.b")
            expect(page.locator("#user-card")).to_contain_text("@bob.b")
            expect(page.locator(".turn")).to_have_count(0)  # a new user, a new conversation
            expect(scope).to_contain_text("town-square")
            expect(scope).not_to_contain_text("eng-private")
            page.fill("#question", QUESTION)
            page.click("#ask-go")
            turn = page.locator(".turn").last
            _finished(turn)
            assert "Tuesday" not in turn.locator(".answer-body").inner_text()
            assert asks[-1] == {"user": "bob.b", "question": QUESTION, "stream": True}

            # ---- a channel summary, then a follow-up on it ----------------------------------
            page.check("#kind-channel")
            page.select_option("#sum-channel", label="town-square")
            page.fill("#sum-days", "3650")
            page.click("#sum-go")
            summary = page.locator(".turn-summary")
            _finished(summary)
            expect(summary.locator(".answer-body")).to_contain_text("lasagna")
            expect(summary).to_contain_text("<img src=x onerror=alert(1)>")
            expect(summary.locator(".answer-body strong").first).to_be_visible()
            expect(page.locator("#conv-title")).to_contain_text("town-square")
            assert page.locator(".turns img, .turns script").count() == 0
            assert summary.locator(".src").count() >= 1

            page.fill("#question", "What does the cafeteria serve on Fridays?")
            page.click("#ask-go")
            follow = page.locator(".turn").last
            expect(follow.locator(".q-text")).to_contain_text("cafeteria")
            _finished(follow)
            expect(follow.locator(".answer-body")).to_contain_text("lasagna")
            assert asks[-1].get("conversation_id"), asks[-1]  # the summary's conversation
            expect(page.locator(".turn")).to_have_count(2)

            # ---- "new conversation" forgets it -------------------------------------------------
            ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACT), full_page=True)
            page.click("#new-conv")
            expect(page.locator(".turn")).to_have_count(0)

            # ---- hostile model output renders as text (a scripted stream, same page) --------
            page.route("**/v1/ask", lambda route: route.fulfill(
                status=200, headers={"Content-Type": "text/event-stream"}, body=HOSTILE_SSE))
            page.fill("#question", "render test")
            page.click("#ask-go")
            turn = page.locator(".turn").last
            _finished(turn)
            body = turn.locator(".answer-body")
            expect(body.locator("ol > li")).to_have_count(2)
            expect(body.locator("ul > li")).to_have_count(1)
            expect(body.locator("strong")).to_have_text("Rotate")
            for literal in ("<b>ops</b>", "![x](http://evil.example/x.png)",
                            "[link](javascript:alert(1))", "<script>alert(2)</script>"):
                expect(body).to_contain_text(literal)
            assert turn.locator("img, script, b, iframe").count() == 0
            assert turn.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))") \
                == [f"#{turn.get_attribute('id')}-s1"]  # one citation; no javascript: permalink
            expect(body.locator(".cite.pending")).to_have_text("[9]")  # no such source
        finally:
            browser.close()
    assert not external, f"the page tried to load external resources: {external}"
    assert not problems, f"browser console errors: {problems}"
