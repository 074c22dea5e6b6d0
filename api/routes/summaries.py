"""Summaries of threads, channels and meetings."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import CallerDep, acting_reader, actor_of
from api.deps import RuntimeDep
from api.models import SSE_RESPONSE, errors
from api.sse import first_checked, sse
from rag.errors import InvalidRequest
from rag.generation import collect
from rag.records import Source

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
    stream: bool = False


class SummaryResponse(BaseModel):
    summary: str
    title: str
    sources: list[Source]
    conversation_id: str
    answer_id: str
    model: str


@router.post("/v1/summaries", response_model=SummaryResponse,
             responses={200: SSE_RESPONSE, **errors(401, 403, 404, 422)})
async def summaries(body: SummaryRequest, request: Request, caller: CallerDep,
                    runtime: RuntimeDep):
    """Summarise a thread, a channel since a time or over the last N days, or a meeting
    transcript: key points, decisions, action items, open questions. The returned
    `conversation_id` takes follow-up questions through /v1/ask."""
    user = await acting_reader(request, caller, body.user)
    transcript = None
    if body.transcript:
        from ingest.files import ExtractionError, extract

        try:
            transcript = extract("upload.vtt", body.transcript.encode()).text
        except ExtractionError as exc:
            raise InvalidRequest(f"transcript: {exc}") from exc
    events = runtime.summaries.events(
        user, body.kind, thread_id=body.thread_id, channel_id=body.channel_id,
        since=body.since, days=body.days, file_id=body.file_id, transcript=transcript,
        actor=actor_of(request))
    events = await first_checked(events)
    if body.stream:
        return sse(request, events)
    text, sources, done = await collect(events)
    return {"summary": text, "title": done["title"], "sources": sources,
            "conversation_id": done["conversation_id"], "answer_id": done["answer_id"],
            "model": done["model"]}
