"""Questions answered from what the asker may read."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import CallerDep, acting_reader, actor_of
from api.deps import RuntimeDep
from api.models import SSE_RESPONSE, errors
from api.sse import first_checked, sse
from rag.records import Source

router = APIRouter()


class AskRequest(BaseModel):
    user: str | None = Field(
        None, min_length=1, description="Username (or user id) asking; a signed-in person "
        "may omit it (a service key must name one).")
    question: str = Field(..., min_length=1, max_length=4000, description="The question.")
    conversation_id: str | None = Field(
        None, description="Continue a conversation (or ask a follow-up on a summary).")
    stream: bool = Field(False, description="Answer as Server-Sent Events.")


class AskResponse(BaseModel):
    answer: str
    sources: list[Source]
    conversation_id: str
    answer_id: str
    model: str


@router.post("/v1/ask", response_model=AskResponse,
             responses={200: SSE_RESPONSE, **errors(401, 403, 404, 422, 502)})
async def ask(body: AskRequest, request: Request, caller: CallerDep, runtime: RuntimeDep):
    """Answer from what the user may read, with numbered citations. With `stream`: SSE
    events `token` (text), `sources` (list), `done` (answer_id, conversation_id), or
    `error`."""
    user = await acting_reader(request, caller, body.user)
    if body.stream:
        return sse(request, await first_checked(runtime.asker.events(
            user, body.question, body.conversation_id, actor=actor_of(request))))
    res = await runtime.asker.ask(user, body.question, body.conversation_id,
                                 actor=actor_of(request))
    return {"answer": res.answer, "sources": res.sources, "conversation_id":
            res.conversation_id, "answer_id": res.answer_id, "model": res.model}
