"""Personalised summaries end to end, through the real provider client against the protocol
double (what the model is given and how its answer becomes sections), the extractive mode, the
profile's signals from a bulk export (reactions, mentions, replies), and the profile API."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from api.app import create_app
from ingest.pipeline import ingest_path
from rag.summaries import collect_summary
from tests.conftest import serve_app
from tests.doubles.llm_servers import OpenAIServer
from tests.workspace import WS

KEY = "k-personal"
H = {"Authorization": f"Bearer {KEY}"}

PAYMENTS = ["Refunds for SEPA direct debit invoices now settle in two days.",
            "The invoice ledger reconciles card payments against bank payouts nightly.",
            "Chargebacks on card payments need the dispute evidence within seven days."]
DESIGN = ["The new typography scale uses Inter at fourteen pixels for body text.",
          "Button colours move to the accessible palette with higher contrast.",
          "Icon grids are sixteen pixels with a two pixel stroke everywhere."]
SYNC = [("pay.lead", "Weekly sync. Payments: the refund settlement for SEPA invoices is fixed "
                     "and chargeback evidence is automated now."),
        ("ui.lead", "Design: the typography scale and the accessible button colours ship "
                    "with the next release of the dashboard."),
        ("pay.lead", "Decision: we reconcile card payouts against the invoice ledger hourly "
                     "from Monday."),
        ("ui.lead", "Decision: icons move to the sixteen pixel grid across the whole app."),
        ("boss.b", "I will send the release notes to customers by Friday, please review them."),
        ("boss.b", "Also, the office coffee machine is finally repaired on the second floor.")]


def workspace() -> WS:
    ws = WS().team("acme")
    for c in ("town-square", "payments", "design", "secret-ops"):
        ws.channel("acme", c, "P" if c == "secret-ops" else "O")
    ws.user("pay.lead", {"acme": ["town-square", "payments"]}, position="Payments Lead",
            locale="de")
    ws.user("ui.lead", {"acme": ["town-square", "design"]}, position="Design Lead")
    ws.user("boss.b", {"acme": ["town-square", "payments", "design", "secret-ops"]},
            position="Head of Product")
    for i, text in enumerate(PAYMENTS):
        ws.post("acme", "payments", "pay.lead", text, at=i)
    for i, text in enumerate(DESIGN):
        ws.post("acme", "design", "ui.lead", text, at=10 + i)
    # what boss.b alone may read, mentioning pay.lead: never part of pay.lead's profile
    ws.post("acme", "secret-ops", "boss.b", "Zebra plan: @pay.lead moves to the acquisition "
            "team in March.", at=20)
    # a reaction (what ui.lead endorses) and a mention of ui.lead
    ws.post("acme", "payments", "boss.b", "Great work on the dispute evidence automation.",
            at=30, reactions=[{"user": "ui.lead", "emoji_name": "+1", "create_at": 0}])
    ws.post("acme", "town-square", "boss.b", "@ui.lead can you check the icon grid export?",
            at=31, replies=[("ui.lead", "yes, the grid export is fixed today")])
    ws.post("acme", "town-square", SYNC[0][0], SYNC[0][1], at=40,
            replies=[(u, m) for u, m in SYNC[1:]])
    return ws


def _rt(make_runtime, tmp_path, **kw):
    rt = make_runtime(mattermost_url="https://chat.example.com", **kw)
    ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    return rt


def _sync_thread(rt) -> str:
    from sqlalchemy import select

    from rag.db import Post

    with rt.db.session() as s:
        return s.scalar(select(Post.id).where(Post.message == SYNC[0][1]))


def _summary(rt, who, **kw) -> dict:
    return asyncio.run(collect_summary(rt.summaries.events(who, "thread", **kw)))


def _signals(rt, who) -> list[dict]:
    user, scope = rt.summaries.user_scope(who)
    return rt.profiles.build(user, scope, vector=False).public()["signals"]


def test_profile_signals_come_from_the_export_and_only_from_what_the_reader_may_read(
        make_runtime, tmp_path):
    rt = _rt(make_runtime, tmp_path)
    ui = _signals(rt, "ui.lead")
    kinds = {(s["kind"], s["text"][:20]) for s in ui}
    assert ("reaction", "Great work on the di") in kinds
    assert ("mention", "@ui.lead can you che") in kinds
    assert ("reply", "yes, the grid export") in kinds
    assert ("position", "Design Lead") in kinds
    assert any(s["kind"] == "channel" and s["source"] == "~acme/design" for s in ui)
    assert all(s["source"].startswith(("https://chat.example.com/acme/pl/", "~acme/", "profile"))
               for s in ui)
    pay = _signals(rt, "pay.lead")
    # mentioned in a private channel pay.lead is not in: not part of their profile
    assert "Zebra" not in json.dumps(pay)
    assert {s["kind"] for s in pay} >= {"authored", "position", "channel"}
    # revocation: pay.lead leaves ~payments; what they wrote there leaves their profile
    from sqlalchemy import delete, select

    from rag.db import Channel, ChannelMember, User

    with rt.db.session() as s:
        uid = s.scalar(select(User.id).where(User.username == "pay.lead"))
        cid = s.scalar(select(Channel.id).where(Channel.name == "payments"))
        s.execute(delete(ChannelMember).where(ChannelMember.user_id == uid,
                                              ChannelMember.channel_id == cid))
        s.commit()
    # a public channel stays readable to the team: it leaves when it turns private
    with rt.db.session() as s:
        s.get(Channel, cid).type = "P"
        s.commit()
    after = json.dumps(_signals(rt, "pay.lead"))
    assert "SEPA direct debit" not in after and "~acme/payments" not in after


def test_the_model_gets_the_profile_and_the_language_and_its_sections_are_parsed(
        make_runtime, tmp_path):
    def reply(body):
        system = body["messages"][0]["content"]
        if "## For you" not in system:
            return "## Key points\n- generic [1]"
        return ("## For you\n- Refund settlement for SEPA invoices is fixed [1]\n"
                "- Card payouts reconcile hourly [3]\n\n## Key points\n- Design ships [2]\n\n"
                "## Decisions\n- Hourly reconciliation from Monday [3]\n\n## Action items\n"
                "None.\n\n## Open questions\nNone.\n\n## Also discussed\n- Coffee machine [6]")

    with OpenAIServer(reply=reply) as srv:
        rt = _rt(make_runtime, tmp_path, llm="openai_compatible:test-model",
                 llm_base_url=srv.base_url)
        thread = _sync_thread(rt)
        doc = _summary(rt, "pay.lead", thread_id=thread)
        prompt = json.dumps(srv.requests[-1].body)
    assert "Reader: Pay Lead (@pay.lead), Payments Lead." in prompt
    assert "in German" in prompt  # the reader's Mattermost locale
    assert "Zebra" not in prompt
    keys = [s["key"] for s in doc["sections"]]
    assert keys == ["for_you", "key_points", "decisions", "action_items", "open_questions",
                    "also_discussed"]
    first = doc["sections"][0]["items"]
    assert first == [{"text": "Refund settlement for SEPA invoices is fixed", "sources": [1]},
                     {"text": "Card payouts reconcile hourly", "sources": [3]}]
    assert doc["sections"][3]["items"] == []  # "None."
    assert doc["personalization"]["applied"]
    assert doc["personalization"]["why"].startswith("for you as Payments Lead")
    # the Markdown is rendered from the sections, citations kept
    assert "## For you\n\n- Refund settlement for SEPA invoices is fixed [1]" in doc["summary"]


def test_a_model_that_ignores_the_format_still_yields_a_summary(make_runtime, tmp_path):
    with OpenAIServer(reply="Payments got faster [1].\n\nDesign ships soon [2][9].") as srv:
        rt = _rt(make_runtime, tmp_path, llm="openai_compatible:test-model",
                 llm_base_url=srv.base_url)
        doc = _summary(rt, "ui.lead", thread_id=_sync_thread(rt))
    points = next(s for s in doc["sections"] if s["key"] == "key_points")["items"]
    # [9] cites no source: dropped
    assert points == [{"text": "Payments got faster.", "sources": [1]},
                      {"text": "Design ships soon.", "sources": [2]}]
    assert "Payments got faster. [1]" in doc["summary"]


def test_answers_follow_the_question_else_the_locale(make_runtime, tmp_path):
    with OpenAIServer(reply="Ja [1].") as srv:
        rt = _rt(make_runtime, tmp_path, llm="openai_compatible:test-model",
                 llm_base_url=srv.base_url)

        async def ask(who):
            return [ev async for ev in rt.asker.events(who, "When do SEPA refunds settle?")]

        asyncio.run(ask("pay.lead"))
        system = srv.requests[-1].body["messages"][0]["content"]
        assert "in the language the question is written in" in system
        assert "if that is unclear, in German" in system
        asyncio.run(ask("ui.lead"))  # no locale: the question's language only
        assert "unclear" not in srv.requests[-1].body["messages"][0]["content"]


def test_extractive_summaries_differ_by_reader_and_say_they_keep_the_sources_words(
        make_runtime, tmp_path):
    rt = _rt(make_runtime, tmp_path)
    thread = _sync_thread(rt)
    pay = _summary(rt, "pay.lead", thread_id=thread)
    ui = _summary(rt, "ui.lead", thread_id=thread)
    boss = _summary(rt, "boss.b", thread_id=thread)  # nothing shapes boss.b? a position does

    def for_you(doc):
        return " ".join(i["text"] for i in doc["sections"][0]["items"])

    assert pay["sections"][0]["key"] == "for_you" and ui["sections"][0]["key"] == "for_you"
    assert "SEPA" in for_you(pay) or "payouts" in for_you(pay)
    assert "typography" in for_you(ui) or "icons" in for_you(ui)
    assert for_you(pay) != for_you(ui)
    assert "in their own words and language (yours is set to German)" in pay["summary"]
    assert "yours is set to" not in ui["summary"]
    assert boss["personalization"]["applied"]
    # a meeting-free thread's decisions are listed whole in both
    for doc in (pay, ui):
        decisions = next(s for s in doc["sections"] if s["key"] == "decisions")["items"]
        assert len(decisions) == 2


def test_personalisation_off_wins_and_a_summary_for_another_reader_hides_their_interests(
        make_runtime, tmp_path):
    rt = _rt(make_runtime, tmp_path)
    thread = _sync_thread(rt)
    user, _ = rt.summaries.user_scope("ui.lead")
    rt.profiles.update(user.id, interests="kerning secrets")
    mine = _summary(rt, "ui.lead", thread_id=thread)
    assert "kerning secrets" in json.dumps(mine["personalization"])
    theirs = _summary(rt, "boss.b", thread_id=thread, for_user="ui.lead")
    assert theirs["for"] == "ui.lead" and theirs["personalization"]["applied"]
    assert "kerning" not in json.dumps(theirs)  # boss.b asked; ui.lead's stated words stay theirs
    assert theirs["personalization"]["why"].startswith("for @ui.lead as Design Lead")
    rt.profiles.update(user.id, personalize=False)
    off = _summary(rt, "ui.lead", thread_id=thread, personalize=True)
    assert not off["personalization"]["applied"]
    assert [s["key"] for s in off["sections"]] == ["key_points", "decisions", "action_items",
                                                   "open_questions"]
    assert "off in your profile" in off["personalization"]["why"]


@pytest.fixture
def server(make_runtime, tmp_path):
    rt = _rt(make_runtime, tmp_path, api_key=KEY)
    with serve_app(create_app(rt)) as base:
        yield base, rt


def test_profile_api_reads_and_sets_what_the_reader_may_set(server):
    base, rt = server
    r = httpx.get(f"{base}/v1/profile", params={"user": "ui.lead"}, headers=H, timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["user"] == "ui.lead" and doc["personalize"] and not doc["catchup"]
    assert {s["kind"] for s in doc["signals"]} >= {"position", "channel", "reaction", "mention"}
    r = httpx.put(f"{base}/v1/profile", json={"user": "ui.lead", "interests": "icons; motion",
                                              "catchup": True}, headers=H, timeout=60)
    assert r.status_code == 200 and r.json()["interests"] == "icons, motion"
    assert r.json()["catchup"] and r.json()["signals"][0] == {
        "kind": "interest", "text": "icons", "weight": 3.0, "source": "profile"}
    # interests with alerts on are watches (from the profile), and go when alerts go off
    def watches():
        got = httpx.get(f"{base}/v1/watches", params={"user": "ui.lead"}, headers=H, timeout=60)
        return sorted((w["topic"], w["from_profile"]) for w in got.json()["watches"])

    assert watches() == []
    httpx.put(f"{base}/v1/profile", json={"user": "ui.lead", "alerts": True}, headers=H,
              timeout=60).raise_for_status()
    assert watches() == [("icons", True), ("motion", True)]
    httpx.put(f"{base}/v1/profile", json={"user": "ui.lead", "alerts": False}, headers=H,
              timeout=60).raise_for_status()
    assert watches() == []
    bad = httpx.put(f"{base}/v1/profile", json={"user": "ui.lead", "position": "CEO"},
                    headers=H, timeout=60)
    assert bad.status_code == 422 and "position" in bad.json()["error"]
    assert httpx.get(f"{base}/v1/profile", headers=H, timeout=60).status_code in (400, 422)
    nobody = httpx.get(f"{base}/v1/profile", params={"user": "no.body"}, headers=H, timeout=60)
    assert nobody.status_code == 404
    assert httpx.get(f"{base}/v1/profile", params={"user": "ui.lead"},
                     timeout=60).status_code == 401


def test_role_targeted_summaries_one_per_reader_from_what_both_may_read(server):
    base, rt = server
    from sqlalchemy import select

    from rag.db import Channel

    with rt.db.session() as s:
        secret = s.scalar(select(Channel.id).where(Channel.name == "secret-ops"))
    body = {"user": "boss.b", "kind": "thread", "thread_id": _sync_thread(rt),
            "for": ["@pay.lead", "ui.lead"]}
    r = httpx.post(f"{base}/v1/summaries", json=body, headers=H, timeout=120)
    assert r.status_code == 200, r.text
    got = {x["for"]: x for x in r.json()["summaries"]}
    assert set(got) == {"pay.lead", "ui.lead"}
    for x in got.values():
        assert x["summary"]["sections"][0]["key"] == "for_you"
        # no Mattermost here: the summary is returned, and says it was not sent
        assert not x["delivered"] and "not configured" in x["delivery"]
    assert got["pay.lead"]["summary"]["sections"][0] != got["ui.lead"]["summary"]["sections"][0]
    # a channel only the asker may read: nothing to summarise for the others
    r = httpx.post(f"{base}/v1/summaries", json={
        "user": "boss.b", "kind": "channel", "channel_id": secret, "days": 3650,
        "for": ["pay.lead"]}, headers=H, timeout=60)
    only = r.json()["summaries"][0]
    assert only["summary"] is None and "may not read" in only["error"]
    assert "Zebra" not in r.text
    r = httpx.post(f"{base}/v1/summaries", json={**body, "stream": True}, headers=H, timeout=60)
    assert r.status_code == 422 and "stream" in r.json()["error"]
