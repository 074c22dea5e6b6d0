"""Summaries of threads, channels and meetings."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import CallerDep, acting_reader, actor_of
from api.deps import RuntimeDep
from api.models import SSE_RESPONSE, errors
from api.sse import first_checked, sse
from rag.errors import InvalidRequest, OpenOpsError
from rag.records import Source
from rag.summaries import collect_summary

router = APIRouter()


class SummaryRequest(BaseModel):
    user: str | None = Field(
        None, min_length=1, description="Username (or user id) asking; a signed-in person "
        "may omit it (a service key must name one).")
    kind: Literal["thread", "channel", "meeting"]
    thread_id: str | None = Field(None, description="A post of the thread (kind=thread).")
    channel_id: str | None = Field(None, description="Channel id or name (kind=channel).")
    since: int | None = Field(None, description="Unix ms; summarise posts from then on.")
    days: float | None = Field(None, gt=0, le=3650, description="Or: the last N days.")
    file_id: str | None = Field(None, description="An attached WebVTT transcript (kind=meeting).")
    transcript: str | None = Field(
        None, max_length=2_000_000, description="Or: an uploaded WebVTT transcript's text.")
    personalize: bool | None = Field(
        None, description="Shape the summary for its reader (a 'For you' section first). "
        "Default: the reader's profile setting (on unless they turned it off, which wins).")
    for_: list[str] | None = Field(
        None, alias="for", min_length=1, max_length=20,
        description="Role-targeted summaries: one per reader named (\"@user\" or a username), "
        "each built only from what both the asker and that reader may read, and sent to the "
        "reader by direct message.")
    stream: bool = False

    model_config = {"populate_by_name": True}


class SummaryItem(BaseModel):
    text: str
    sources: list[int]


class SummarySection(BaseModel):
    key: Literal["for_you", "key_points", "decisions", "action_items", "open_questions",
                 "also_discussed"]
    title: str
    items: list[SummaryItem]


class Personalization(BaseModel):
    applied: bool
    why: str
    signals: list[dict]


class SummaryResponse(BaseModel):
    summary: str
    title: str
    sources: list[Source]
    sections: list[SummarySection]
    personalization: Personalization
    conversation_id: str
    answer_id: str
    model: str


class TargetedSummary(BaseModel):
    for_: str = Field(..., alias="for", description="The reader this summary is for.")
    delivered: bool = Field(..., description="Whether it reached the reader by DM.")
    delivery: str = Field(..., description="Where it went, or why it did not.")
    summary: SummaryResponse | None = None
    error: str | None = Field(None, description="Why there is no summary for this reader.")

    model_config = {"populate_by_name": True}


class TargetedSummaries(BaseModel):
    summaries: list[TargetedSummary]


@router.post("/v1/summaries", response_model=SummaryResponse | TargetedSummaries,
             response_model_by_alias=True,
             responses={200: SSE_RESPONSE, **errors(401, 403, 404, 422)})
async def summaries(body: SummaryRequest, request: Request, caller: CallerDep,
                    runtime: RuntimeDep):
    """Summarise a thread, a channel since a time or over the last N days, or a meeting
    transcript, in sections: (personalised: what matters to the reader first) key points,
    decisions, action items, open questions. The returned `conversation_id` takes follow-up
    questions through /v1/ask. With `for`, one summary per reader named, each sent to them."""
    user = await acting_reader(request, caller, body.user)
    transcript = None
    if body.transcript:
        from ingest.files import ExtractionError, extract

        try:
            transcript = extract("upload.vtt", body.transcript.encode()).text
        except ExtractionError as exc:
            raise InvalidRequest(f"transcript: {exc}") from exc
    params = dict(thread_id=body.thread_id, channel_id=body.channel_id, since=body.since,
                  days=body.days, file_id=body.file_id, transcript=transcript,
                  personalize=body.personalize, actor=actor_of(request))
    if body.for_:
        if body.stream:
            raise InvalidRequest("stream: not with 'for' (one summary per reader is returned "
                                 "at once and sent to each by direct message)")
        if transcript:
            raise InvalidRequest("for: an uploaded transcript is yours alone; attach it in "
                                 "Mattermost to summarise it for others")
        out = await targeted(request, runtime, user, body.kind, body.for_, params)
        return {"summaries": out}
    events = runtime.summaries.events(user, body.kind, **params)
    events = await first_checked(events)
    if body.stream:
        return sse(request, events)
    return await collect_summary(events)


async def targeted(request: Request, runtime, user: str, kind: str, readers: list[str],
                   params: dict) -> list[dict]:
    """One summary per reader (a reader nothing can be summarised for gets an ``error``),
    each delivered by DM through the bot when it runs."""
    out = []
    for name in dict.fromkeys(r.strip().lstrip("@") for r in readers if r.strip()):
        try:
            await request.app.state.live.refresh_reader(name)
            summary = await collect_summary(
                runtime.summaries.events(user, kind, for_user=name, **params))
        except OpenOpsError as exc:
            out.append({"for": name, "delivered": False, "delivery": "not sent",
                        "summary": None, "error": str(exc)})
            continue
        delivered, where = await request.app.state.live.deliver_summary(
            user, summary["for"], summary)
        out.append({"for": summary["for"], "delivered": delivered, "delivery": where,
                    "summary": summary, "error": None})
    return out
