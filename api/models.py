"""Models shared by several routes (each route's own request and response models live beside it)."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorModel(BaseModel):
    error: str
    detail: object | None = None


def errors(*statuses: int) -> dict:
    """The ``responses=`` of a route: each status answered with an :class:`ErrorModel` body."""
    return {s: {"model": ErrorModel} for s in statuses}


SSE_RESPONSE = {"content": {"text/event-stream": {}}}
