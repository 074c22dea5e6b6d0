"""Watches: topics a reader wants a DM about when a new thread or window matches them."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.auth import CallerDep, acting_user
from api.deps import RuntimeDep
from api.models import errors

router = APIRouter()


class WatchRequest(BaseModel):
    user: str | None = Field(
        None, min_length=1, description="Username (or user id) watching; a signed-in person "
        "may omit it (a service key must name one).")
    topic: str = Field(..., min_length=2, max_length=200,
                       description="What to watch for, in a few words: \"billing api outage\".")


class WatchOut(BaseModel):
    id: int
    topic: str
    from_profile: bool = Field(description="An interest from the reader's profile (changed "
                               "there, not here).")
    created_at: int


class WatchList(BaseModel):
    user: str
    watches: list[WatchOut]


@router.get("/v1/watches", response_model=WatchList, responses=errors(401, 403, 404, 422))
def list_watches(request: Request, caller: CallerDep, runtime: RuntimeDep,
                 user: str | None = Query(None, description="Username or id (a service key "
                                          "must name one).")) -> dict:
    """The reader's watches, their profile's interests among them when alerts from interests
    are on."""
    who = acting_user(request, caller, user, where="query")
    uid, watches = runtime.watches.list_for(who)
    return {"user": uid, "watches": watches}


@router.post("/v1/watches", status_code=201, response_model=WatchOut,
             responses=errors(401, 403, 404, 422))
def add_watch(body: WatchRequest, request: Request, caller: CallerDep,
              runtime: RuntimeDep) -> dict:
    """Watch a topic: new threads and conversation windows that match it, in channels the
    reader may read, come to them by DM from the bot (once per thread, at most
    OPENOPS_WATCH_DAILY_CAP a day). The same topic twice is one watch."""
    who = acting_user(request, caller, body.user)
    return runtime.watches.add(who, body.topic)


@router.delete("/v1/watches/{watch_id}", response_model=WatchOut,
               responses=errors(401, 403, 404, 422))
def delete_watch(watch_id: int, request: Request, caller: CallerDep, runtime: RuntimeDep,
                 user: str | None = Query(None, description="Username or id (a service key "
                                          "must name one).")) -> dict:
    """Stop a watch (its alerts not sent yet are dropped)."""
    who = acting_user(request, caller, user, where="query")
    return runtime.watches.remove(who, watch_id)
