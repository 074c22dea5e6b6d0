"""Permission-scoped search."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import CallerDep, acting_reader_blocking, actor_of
from api.deps import RuntimeDep
from api.models import errors
from rag.search import MAX_K, SearchResult

router = APIRouter()


class SearchRequest(BaseModel):
    user: str | None = Field(
        None, min_length=1, description="Username (or user id) to search as; a signed-in "
        "person may omit it (a service key must name one).")
    query: str = Field(..., min_length=1, description="The search text.")
    k: int = Field(8, ge=1, le=MAX_K, description="Number of results.")


class SearchResponseModel(BaseModel):
    results: list[SearchResult]


@router.post("/v1/search", response_model=SearchResponseModel, responses=errors(401, 403, 404, 422))
def search(body: SearchRequest, request: Request, caller: CallerDep, runtime: RuntimeDep) -> dict:
    user = acting_reader_blocking(request, caller, body.user)
    return runtime.search.search(user, body.query, body.k,
                                 actor=actor_of(request)).to_dict()
