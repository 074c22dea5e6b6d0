"""Re-index jobs against the live Mattermost server (admin key)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.auth import require_admin
from api.deps import LiveDep
from api.models import errors

router = APIRouter(dependencies=[Depends(require_admin)])


class ReindexRequest(BaseModel):
    scope: Literal["all"] | dict[str, str] = Field(
        "all", description='"all", {"team_id": ...} or {"channel_id": ...}')
    changed_only: bool = Field(
        False, description="Only posts changed since each channel's last sync (users, "
                           "channels and memberships are always read whole).")


@router.post("/v1/reindex", status_code=202, responses=errors(400, 401))
async def reindex(body: ReindexRequest, live: LiveDep) -> dict:
    """Re-index from the live Mattermost server (admin key): the whole server, a team or a
    channel. Returns the job at once; follow it at ``GET /v1/jobs/{job_id}``."""
    return live.jobs.start(body.scope, incremental=body.changed_only)


@router.get("/v1/jobs/{job_id}", responses=errors(404))
def job(job_id: str, live: LiveDep) -> dict:
    """A job's status and progress: channels, posts, files and chunks done, errors."""
    return live.jobs.get(job_id)


@router.delete("/v1/jobs/{job_id}", responses=errors(404))
def cancel_job(job_id: str, live: LiveDep) -> dict:
    """Cancel a job (it stops after the page it is on; what it synced stays)."""
    return live.jobs.cancel(job_id)
