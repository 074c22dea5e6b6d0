"""The playground's personal views in a real browser (headless Chromium via Playwright) over
real HTTP, on the shipped sample workspace (unauthenticated, --insecure-local):

- "Profile": a reader's settings and signals, each signal with where it came from (the post's
  permalink as a link; a channel or the profile as text); editing the interests round-trips
  through PUT /v1/profile, and what was typed is shown as text, never as markup.
- "Summarise for": the product-sync meeting summarised by Hannah for Maria (Director of
  Product Engineering) and Olivia (Head of Content) side by side: each column says how it was
  shaped, starts with its own "For you", cites its sources; a reader who may not read the
  meeting gets an error in their column instead of a summary."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from api.app import create_app
from ingest.pipeline import ingest_path
from tests.conftest import ROOT, serve_app
from tests.e2e.test_playground import ARGS, CHROMIUM, MATTERMOST, _skip_without_browser

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

SAMPLE = ROOT / "data" / "sample-workspace"
ARTIFACTS = ROOT / "test-artifacts"
# typed into the interests field: must come back as text, never as an element
HOSTILE = "<img src=x onerror=alert(1)> Kubernetes upgrades"
# ingesting the sample is the cost (~30 s on two cores), the browser part a few seconds
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample(embedder, tmp_path_factory):
    """The API over the sample workspace, with a Mattermost URL so that sources are permalinks."""
    _skip_without_browser()
    from rag.runtime import Runtime
    from rag.settings import Settings

    rt = Runtime(Settings(home=tmp_path_factory.mktemp("personal"), _env_file=None,
                          collection=f"p{uuid.uuid4().hex[:10]}", mattermost_url=MATTERMOST))
    rt.__dict__["embedder"] = embedder
    ingest_path(rt, SAMPLE)
    try:
        with serve_app(create_app(rt, insecure_local=True)) as base:
            yield base, rt
    finally:
        rt.close()


class Browser:
    """One page on the playground; nothing may load from elsewhere, nothing may log an error."""

    def __init__(self, p, base: str):
        self.base = base
        self.external: list[str] = []
        self.problems: list[str] = []
        self.browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.set_default_timeout(15_000)
        self.page.route("**/*", self._gate)
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"),
                                          d.dismiss()))

    def _gate(self, route) -> None:
        if route.request.url.startswith(self.base + "/"):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def open_as(self, username: str) -> None:
        resp = self.page.goto(self.base + "/")
        assert resp and resp.ok
        expect(self.page.locator(f"#user-select option[value='{username}']")).to_have_count(1)
        self.page.select_option("#user-select", username)
        expect(self.page.locator("#user-card")).to_contain_text(f"@{username}")

    def close(self) -> None:
        self.browser.close()
        assert not self.external, f"the page tried to load external resources: {self.external}"
        assert not self.problems, f"browser console errors: {self.problems}"


def _screenshot(page, view: str, name: str) -> None:
    """The whole view (it scrolls inside the page): a viewport as tall as it, then back."""
    size = page.viewport_size
    height = page.locator(view).evaluate("el => el.scrollHeight + el.getBoundingClientRect().top")
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 6000)})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    page.set_viewport_size(size)


def _profile(page, user: str) -> dict:
    return page.evaluate("""async (u) => (await fetch('/v1/profile?user=' + u)).json()""", user)


@pytest.mark.timeout(300)
def test_profile_view_shows_signals_with_sources_and_edits_round_trip(sample):
    base, _rt = sample
    with sync_playwright() as p:
        b = Browser(p, base)
        try:
            page = b.page
            b.open_as("kenji.watanabe")
            expect(page.locator("#view-profile")).to_be_hidden()
            page.click("#tab-profile")
            expect(page.locator("#view-profile")).to_be_visible()
            expect(page.locator("#view-chat")).to_be_hidden()
            expect(page.locator("#tab-profile")).to_have_attribute("aria-current", "page")
            expect(page.locator("#prof-who")).to_contain_text("@kenji.watanabe")

            api = _profile(page, "kenji.watanabe")
            rows = page.locator("#signals tbody tr")
            expect(rows).to_have_count(len(api["signals"]))
            assert len(api["signals"]) >= 5
            expect(page.locator("#sig-count")).to_have_text(str(len(api["signals"])))
            # the position comes from the profile: its source is text, not a link
            position = page.locator("tr[data-kind='position']")
            expect(position.locator(".sig-text")).to_have_text("Site Reliability Engineer")
            expect(position.locator(".sig-source")).to_have_text("profile")
            assert position.locator("a").count() == 0
            # a channel he is in: the channel as ~team/name, as text
            channel = page.locator("tr[data-kind='channel']").filter(has_text="~infra")
            expect(channel.locator(".sig-source")).to_have_text("~engineering/infra")
            # what he wrote, replied to, reacted to, was mentioned in: links to the posts
            for row, sig in zip(rows.all(), api["signals"], strict=True):
                expect(row.locator(".sig-kind")).to_be_visible()
                expect(row.locator(".sig-weight")).to_contain_text(f"{sig['weight']:.2f}")
                if sig["source"].startswith("http"):
                    assert sig["kind"] in {"authored", "reply", "reaction", "mention"}, sig
                    link = row.locator(".sig-source a.permalink")
                    assert link.get_attribute("href") == sig["source"]
                    assert link.get_attribute("rel") == "noopener noreferrer"
            posts = [s for s in api["signals"] if s["source"].startswith(MATTERMOST + "/")]
            assert {s["kind"] for s in posts} >= {"authored", "reply"}, api["signals"]
            assert page.locator("#signals a.permalink").count() == len(posts)
            for href in page.locator("#view-profile a").evaluate_all(
                    "els => els.map(e => e.href)"):
                # a team's posts as /<team>/pl/<id>, direct messages' through /_redirect/pl/
                assert re.match(re.escape(MATTERMOST) + r"/[\w-]+/pl/\w+$", href), href

            # settings as the API has them
            expect(page.locator("#prof-personalize")).to_be_checked()
            expect(page.locator("#prof-catchup")).not_to_be_checked()
            expect(page.locator("#prof-interests")).to_have_value(api["interests"])

            # ---- edit: interests and catch-up, saved through PUT, shown, kept -------------------
            page.fill("#prof-interests", f"{HOSTILE}, IRSA migration")
            page.check("#prof-catchup")
            page.click("#prof-save")
            expect(page.locator("#prof-status")).to_have_text("Saved.")
            interest = page.locator("tr[data-kind='interest']")
            expect(interest.first).to_be_visible()
            expect(page.locator("#signals")).to_contain_text(HOSTILE)  # literally, as text
            assert page.locator("#view-profile img, #view-profile script").count() == 0
            saved = _profile(page, "kenji.watanabe")
            assert saved["interests"] == f"{HOSTILE}, IRSA migration"
            assert saved["catchup"] is True and saved["personalize"] is True
            expect(interest).to_have_count(
                sum(s["kind"] == "interest" for s in saved["signals"]))

            _screenshot(page, "#view-profile", "playground-profile.png")

            # a fresh page shows what was saved
            b.open_as("kenji.watanabe")
            page.click("#tab-profile")
            expect(page.locator("#prof-interests")).to_have_value(f"{HOSTILE}, IRSA migration")
            expect(page.locator("#prof-catchup")).to_be_checked()
            # another reader's profile is theirs, not his
            page.select_option("#user-select", "olivia.brooks")
            expect(page.locator("#prof-who")).to_contain_text("@olivia.brooks")
            expect(page.locator("tr[data-kind='position'] .sig-text")).to_have_text(
                "Head of Content")
            expect(page.locator("#prof-interests")).to_have_value("")
            expect(page.locator("#signals")).not_to_contain_text("IRSA migration")

            # put it back as it was (the module's other test reads these profiles)
            b.open_as("kenji.watanabe")
            page.click("#tab-profile")
            page.fill("#prof-interests", "")
            page.uncheck("#prof-catchup")
            page.click("#prof-save")
            expect(page.locator("#prof-status")).to_have_text("Saved.")
            expect(page.locator("tr[data-kind='interest']")).to_have_count(0)
            assert _profile(page, "kenji.watanabe")["interests"] == ""
        finally:
            b.close()


def _put(page, body: dict) -> None:
    status = page.evaluate("""async (b) => (await fetch('/v1/profile', {method: 'PUT',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify(b)})).status""", body)
    assert status == 200, status


def _group_transcript(rt) -> str:
    """The product-sync transcript attached in Hannah's, Maria's and Olivia's group message."""
    from rag.db import Channel, File

    with rt.db.session() as s:
        ids = [f.id for f in s.scalars(select(File).where(File.kind == "transcript"))
               if (ch := s.get(Channel, f.channel_id)) is not None and ch.type == "G"]
    assert len(ids) == 1, ids
    return ids[0]


def _items(col, key: str) -> list[str]:
    return [t.strip() for t in col.locator(f".for-sec[data-key='{key}'] li").all_inner_texts()]


@pytest.mark.timeout(300)
def test_summarise_for_two_readers_side_by_side(sample):
    base, rt = sample
    file_id = _group_transcript(rt)
    bodies: list[dict] = []
    with sync_playwright() as p:
        b = Browser(p, base)
        try:
            page = b.page
            page.on("request", lambda r: r.url == base + "/v1/summaries" and bodies.append(
                r.post_data_json))
            b.open_as("hannah.schmidt")
            page.click("#tab-for")
            expect(page.locator("#view-for")).to_be_visible()
            page.click("label[for=for-kind-meeting]")
            expect(page.locator("#for-f-channel")).to_be_hidden()
            page.fill("#for-file", file_id)
            page.fill("#for-a", "maria.gonzalez")
            page.fill("#for-b", "@olivia.brooks")
            page.click("#for-go")
            cols = page.locator(".for-col")
            expect(cols).to_have_count(2)
            expect(page.locator("#for-status")).to_contain_text("2 summaries")
            assert bodies[-1] == {"user": "hannah.schmidt", "kind": "meeting",
                                  "file_id": file_id,
                                  "for": ["@maria.gonzalez", "@olivia.brooks"]}
            maria, olivia = cols.nth(0), cols.nth(1)
            expect(maria.locator(".for-who")).to_have_text("For @maria.gonzalez")
            expect(olivia.locator(".for-who")).to_have_text("For @olivia.brooks")
            # how each was shaped, in its reader's terms
            expect(maria.locator(".why.applied")).to_contain_text("Director of Product Engineering")
            expect(olivia.locator(".why.applied")).to_contain_text("Head of Content")
            # no bot running here: each column says it was not sent, and why
            for col in (maria, olivia):
                expect(col.locator(".delivery")).to_contain_text(
                    "Delivery: not sent: Mattermost is not configured")
                expect(col.locator(".error")).to_have_count(0)
                # "For you" first, then the rest in the API's order
                keys = col.locator(".for-sec").evaluate_all("els => els.map(e => e.dataset.key)")
                assert keys[0] == "for_you", keys
                assert "key_points" in keys and "decisions" in keys, keys
                expect(col.locator(".for-sec").first.locator("h4")).to_have_text("For you")
                # every For-you item cites the meeting: a link to a source card in this column
                for item in col.locator(".for-sec[data-key='for_you'] li").all():
                    expect(item.locator("a.cite").first).to_be_visible()
            mine, hers = _items(maria, "for_you"), _items(olivia, "for_you")
            assert mine and hers
            assert mine != hers, (mine, hers)  # two readers, two different "For you" lists
            assert set(mine) != set(hers)
            # the decisions are the meeting's, whoever reads them
            assert _items(maria, "decisions") == _items(olivia, "decisions")

            _screenshot(page, "#view-for", "playground-summarise-for.png")

            # a citation opens its source: speaker and time in the transcript
            cite = olivia.locator(".for-sec[data-key='for_you'] a.cite").first
            card = page.locator(f"[id='{cite.get_attribute('href').lstrip('#')}']")
            expect(card).to_be_hidden()  # the sources start folded
            cite.click()
            expect(card).to_be_visible()
            expect(card).to_have_class(re.compile(r"\bhighlight\b"))
            expect(card.locator(".src-at")).to_contain_text(re.compile(r" at \d+:\d\d"))
            assert olivia.locator(".src").count() >= 1
            for href in page.locator("#view-for a").evaluate_all("els => els.map(e => e.href)"):
                # citations to this page, and the transcript's post in the group message
                assert href.startswith(base + "/#") or href.startswith(
                    MATTERMOST + "/_redirect/pl/"), href
            assert page.locator("#view-for img, #view-for script").count() == 0


            # ---- a reader outside the group message gets an error, not a summary ----------------
            page.fill("#for-b", "kenji.watanabe")
            page.click("#for-go")
            expect(cols.nth(1).locator(".for-who")).to_have_text("For @kenji.watanabe")
            expect(cols.nth(1).locator(".error")).to_contain_text("transcript")
            expect(cols.nth(1).locator(".for-sec")).to_have_count(0)
            expect(cols.nth(1).locator(".delivery")).to_contain_text("not sent")
            expect(cols.nth(0).locator(".for-sec[data-key='for_you'] li")).to_have_count(
                len(mine))

            # ---- a reader who turned personalisation off gets the generic summary --------------
            _put(page, {"user": "olivia.brooks", "personalize": False})
            try:
                page.fill("#for-b", "olivia.brooks")
                page.click("#for-go")
                expect(cols.nth(1).locator(".for-who")).to_have_text("For @olivia.brooks")
                expect(cols.nth(1).locator(".why.generic .why-tag")).to_have_text("Generic")
                expect(cols.nth(1).locator(".for-sec[data-key='for_you']")).to_have_count(0)
                expect(cols.nth(1).locator(".for-sec").first).to_have_attribute(
                    "data-key", "key_points")
                expect(cols.nth(0).locator(".why.applied")).to_be_visible()
            finally:
                _put(page, {"user": "olivia.brooks", "personalize": True})

            # ---- a channel over the last N days, for two readers of the feed --------------------
            page.click("label[for=for-kind-channel]")
            page.select_option("#for-channel", label="hn-links")
            page.fill("#for-days", "3650")
            page.fill("#for-a", "maria.gonzalez")
            page.fill("#for-b", "kenji.watanabe")
            page.click("#for-go")
            expect(cols.nth(1).locator(".for-who")).to_have_text("For @kenji.watanabe")
            expect(cols.nth(0).locator(".for-head .muted")).to_contain_text("~hn-links")
            assert bodies[-1]["kind"] == "channel" and bodies[-1]["days"] == 3650
            expect(cols.locator(".error")).to_have_count(0)
            feed_a, feed_b = _items(cols.nth(0), "for_you"), _items(cols.nth(1), "for_you")
            assert feed_a and feed_b and feed_a != feed_b, (feed_a, feed_b)
        finally:
            b.close()
