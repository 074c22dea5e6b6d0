"""👍/👎 on answers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.auth import require_key
from api.deps import RuntimeDep
from api.models import errors

router = APIRouter()


class FeedbackRequest(BaseModel):
    user: str = Field(..., min_length=1)
    answer_id: str = Field(..., min_length=1)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=4000)


@router.post("/v1/feedback", dependencies=[Depends(require_key)], responses=errors(404, 422))
def feedback(body: FeedbackRequest, runtime: RuntimeDep) -> dict:
    """Record a 👍/👎 on an answer (every answer carries an `answer_id`)."""
    return runtime.records.feedback(body.user, body.answer_id, body.rating, body.comment or "")
