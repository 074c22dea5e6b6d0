"""The reader's profile: what shapes their summaries, catch-ups and alerts, and what they set."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.auth import CallerDep, acting_reader
from api.deps import RuntimeDep
from api.models import errors

router = APIRouter()


class SignalOut(BaseModel):
    kind: str = Field(..., description="position, interest, channel, authored, reply, reaction "
                      "or mention")
    text: str
    weight: float
    source: str = Field(..., description="The post's permalink (post:<id> without a site URL), "
                        "the channel as ~team/name, or 'profile'.")


class ProfileOut(BaseModel):
    user: str
    personalize: bool
    interests: str
    catchup: bool
    alerts: bool = Field(..., description="Alerts from the profile's interests (watches).")
    signals: list[SignalOut]


class ProfileUpdate(BaseModel):
    user: str | None = Field(
        None, min_length=1, description="Username (or user id); a signed-in person may omit "
        "it (a service key must name one).")
    interests: str | None = Field(None, max_length=2000,
                                  description="Stated interests, comma separated.")
    personalize: bool | None = Field(None, description="Off: generic summaries everywhere.")
    catchup: bool | None = Field(None, description="Catch-up DMs after joining or coming back.")
    alerts: bool | None = Field(None, description="Alerts from the stated interests.")

    model_config = {"extra": "forbid"}


def _read(runtime, who: str) -> dict:
    user, scope = runtime.summaries.user_scope(who)
    return runtime.profiles.build(user, scope).public()


@router.get("/v1/profile", response_model=ProfileOut, responses=errors(401, 403, 404, 422))
async def get_profile(request: Request, caller: CallerDep, runtime: RuntimeDep,
                      user: str | None = Query(None, min_length=1)) -> dict:
    """The reader's profile: their settings and the signals that shape their summaries, each
    with where it came from; only from what they may read now."""
    who = await acting_reader(request, caller, user, where="query")
    return await asyncio.to_thread(_read, runtime, who)


@router.put("/v1/profile", response_model=ProfileOut, responses=errors(401, 403, 404, 422))
async def put_profile(body: ProfileUpdate, request: Request, caller: CallerDep,
                      runtime: RuntimeDep) -> dict:
    """Set what the reader may set: stated interests, personalisation, catch-ups, alerts."""
    who = await acting_reader(request, caller, body.user)
    user, _ = await asyncio.to_thread(runtime.summaries.user_scope, who)
    await asyncio.to_thread(runtime.profiles.update, user.id, interests=body.interests,
                            personalize=body.personalize, catchup=body.catchup,
                            alerts=body.alerts)
    return await asyncio.to_thread(_read, runtime, who)
