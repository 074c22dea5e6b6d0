"""Questions answered from what the asker may read."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.auth import require_key
from api.deps import RuntimeDep
from api.models import SSE_RESPONSE, errors
from api.sse import first_checked, sse
from rag.records import Source

router = APIRouter()


class AskRequest(BaseModel):
    user: str = Field(..., min_length=1, description="Username (or user id) asking.")
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
             responses={200: SSE_RESPONSE, **errors(401, 404, 422, 502)},
             dependencies=[Depends(require_key)])
async def ask(body: AskRequest, runtime: RuntimeDep):
    """Answer from what the user may read, with numbered citations. With `stream`: SSE
    events `token` (text), `sources` (list), `done` (answer_id, conversation_id), or
    `error`."""
    if body.stream:
        return sse(await first_checked(runtime.asker.events(
            body.user, body.question, body.conversation_id)))
    res = await runtime.asker.ask(body.user, body.question, body.conversation_id)
    return {"answer": res.answer, "sources": res.sources, "conversation_id":
            res.conversation_id, "answer_id": res.answer_id, "model": res.model}
