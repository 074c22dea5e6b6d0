"""👍/👎 on answers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import CallerDep, acting_user, actor_of
from api.deps import RuntimeDep
from api.models import errors

router = APIRouter()


class FeedbackRequest(BaseModel):
    user: str | None = Field(
        None, min_length=1, description="Username (or user id) rating; a signed-in person "
        "may omit it (a service key must name one).")
    answer_id: str = Field(..., min_length=1)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=4000)


@router.post("/v1/feedback", responses=errors(401, 403, 404, 422))
def feedback(body: FeedbackRequest, request: Request, caller: CallerDep,
             runtime: RuntimeDep) -> dict:
    """Record a 👍/👎 on an answer (every answer carries an `answer_id`)."""
    user = acting_user(request, caller, body.user)
    return runtime.records.feedback(user, body.answer_id, body.rating, body.comment or "",
                                    actor=actor_of(request))
