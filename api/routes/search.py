"""Permission-scoped search."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.auth import require_key
from api.deps import RuntimeDep
from api.models import errors
from rag.search import MAX_K, SearchResult

router = APIRouter()


class SearchRequest(BaseModel):
    user: str = Field(..., min_length=1, description="Username (or user id) to search as.")
    query: str = Field(..., min_length=1, description="The search text.")
    k: int = Field(8, ge=1, le=MAX_K, description="Number of results.")


class SearchResponseModel(BaseModel):
    results: list[SearchResult]


@router.post("/v1/search", response_model=SearchResponseModel, responses=errors(401, 404, 422),
             dependencies=[Depends(require_key)])
def search(body: SearchRequest, runtime: RuntimeDep) -> dict:
    return runtime.search.search(body.user, body.query, body.k).to_dict()
