"""Who may read what: the audit log, the users of the mirror, a user's scope."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from api.auth import CallerDep, acting_reader_blocking, require_admin
from api.deps import RuntimeDep
from api.models import errors
from rag.errors import InvalidRequest

router = APIRouter()


@router.get("/v1/audit", dependencies=[Depends(require_admin)], responses=errors(403))
def audit(runtime: RuntimeDep, limit: int = 100, user: str | None = None) -> dict:
    """Who asked what, when, from which channels and sources, with which model (admins)."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: must be between 1 and 1000")
    return {"records": runtime.records.audit(limit=limit, user=user)}


@router.get("/v1/users", dependencies=[Depends(require_admin)])
def users(runtime: RuntimeDep) -> dict:
    """Active users of the mirror, for the playground's user picker (admins)."""
    from sqlalchemy import select

    from rag.db import User

    with runtime.db.session() as s:
        rows = list(s.scalars(select(User).where(User.delete_at == 0, User.is_bot.is_(False))
                              .order_by(User.username)))
    return {"users": [{"id": u.id, "username": u.username, "name": u.display_name,
                       "position": u.position, "guest": u.is_guest} for u in rows]}


@router.get("/v1/scope", responses=errors(401, 403, 404, 422))
def scope(request: Request, caller: CallerDep, runtime: RuntimeDep,
          user: str | None = None) -> dict:
    """The channels a user may read right now (what a search or an answer draws on)."""
    from sqlalchemy import select

    from rag.db import Channel, Team

    sc = runtime.search.scope_for(
        acting_reader_blocking(request, caller, user, where="query"))
    with runtime.db.session() as s:
        chans = list(s.scalars(select(Channel).where(Channel.id.in_(list(sc.channels)))))
        teams = {t.id: t.name for t in s.scalars(select(Team))}
    return {"channels": sorted(
        ({"id": c.id, "name": c.name if c.type in ("O", "P") else c.display_name,
          "type": c.type, "team": teams.get(c.team_id or "", "")} for c in chans),
        key=lambda c: (c["team"], c["type"], c["name"]))}
