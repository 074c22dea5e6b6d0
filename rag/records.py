"""What OpenOps keeps of its answers: the answers with their sources, feedback on them, and
the audit log (who asked what, when, from which channels and posts, with which model)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import Answer, AuditRecord, Database, Feedback
from .errors import InvalidRequest, NotFound
from .permissions import find_user, unreadable, user_and_scope
from .util import now_ms


@dataclass
class Source:
    """One source an answer or summary was given, numbered as the text cites it."""

    n: int
    chunk_id: str
    post_id: str
    thread_id: str
    channel_id: str
    channel_name: str
    team_name: str
    channel_type: str
    author: str
    created_at: int
    permalink: str | None
    source: str
    file_name: str | None
    text: str
    # a meeting's turn: who spoke, from when to when (ms from the start of the recording)
    speaker: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None

    def public(self) -> dict:
        return asdict(self)


def write_audit(db: Database, *, user_id: str, action: str, question: str,
                sources: Sequence, model: str, latency_ms: float,
                input_tokens: int | None = None, output_tokens: int | None = None,
                answer_text: str | None = None, answer_id: str | None = None,
                cited: Sequence | None = None, actor: str | None = None) -> None:
    """One audit record: who acted (``actor``: the service key or the person) for whom
    (``user_id``), what was asked, when, and every channel and post whose text went to the
    model (``sources``), with the ones the answer cited (``cited``)."""
    with db.session() as s:
        s.add(AuditRecord(
            at=now_ms(), user_id=user_id, action=action, question=question,
            channel_ids=json.dumps(sorted({x.channel_id for x in sources})),
            source_ids=json.dumps([x.post_id for x in sources]), model=model,
            input_tokens=input_tokens, output_tokens=output_tokens,
            latency_ms=round(latency_ms, 1), answer_text=answer_text, answer_id=answer_id,
            cited_ids=json.dumps([x.post_id for x in cited]) if cited is not None else None,
            actor=actor))
        s.commit()


class Records:
    def __init__(self, settings, db: Database):
        self.settings = settings
        self.db = db

    # ---- answers --------------------------------------------------------------------------
    def add_answer(self, s: Session, *, answer_id: str, conversation_id: str, user_id: str,
                   question: str, text: str, model: str, created_at: int,
                   sources: Sequence[Source]) -> None:
        """The answer row, in the caller's transaction (with its conversation turn)."""
        s.add(Answer(id=answer_id, conversation_id=conversation_id, user_id=user_id,
                     question=question, text=text, model=model, created_at=created_at,
                     sources=json.dumps([x.public() for x in sources])))

    # ---- audit ----------------------------------------------------------------------------
    def audit_generation(self, *, user_id: str, action: str, question: str,
                         sources: Sequence[Source], cited: Sequence[Source],
                         input_tokens: int | None, output_tokens: int | None,
                         latency_ms: float, answer_text: str | None, answer_id: str | None,
                         model: str, actor: str | None) -> None:
        """An answer's or summary's record: ``sources``, all the model was given."""
        write_audit(self.db, user_id=user_id, action=action, question=question,
                    sources=sources, cited=cited, model=model, input_tokens=input_tokens,
                    output_tokens=output_tokens, latency_ms=latency_ms,
                    answer_text=answer_text if self.settings.audit_answer_text else None,
                    answer_id=answer_id, actor=actor)

    def audit(self, limit: int = 100, user: str | None = None) -> list[dict]:
        with self.db.session() as s:
            q = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
            if user:
                u = find_user(s, user)
                q = q.where(AuditRecord.user_id == (u.id if u else user))
            rows = list(s.scalars(q))
        return [{
            "id": r.id, "at": r.at, "user_id": r.user_id, "action": r.action,
            "question": r.question, "channel_ids": json.loads(r.channel_ids),
            "source_ids": json.loads(r.source_ids), "model": r.model,
            "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
            "latency_ms": r.latency_ms, "answer_text": r.answer_text, "answer_id": r.answer_id,
            "cited_ids": json.loads(r.cited_ids) if r.cited_ids is not None else None,
            "actor": r.actor,
        } for r in rows]

    # ---- feedback -------------------------------------------------------------------------
    def feedback(self, who: str, answer_id: str, rating: str, comment: str = "", *,
                 actor: str | None = None) -> dict:
        if rating not in ("up", "down"):
            raise InvalidRequest("rating: must be 'up' or 'down'")
        user, scope = user_and_scope(self.db, who,
                                     include_archived=self.settings.include_archived)
        with self.db.session() as s:
            answer = s.get(Answer, answer_id)
            drawn = {x.get("channel_id") for x in json.loads(answer.sources or "[]")
                     if x.get("channel_id")} if answer else set()
            # the asker, or anyone who may read everything the answer drew on (a reader of the
            # channel it was posted in); to anyone else the answer does not exist
            if answer is None or (answer.user_id != user.id and not drawn <= scope.channel_ids):
                raise NotFound(unreadable("answer", answer_id))
            fb = Feedback(answer_id=answer_id, user_id=user.id, rating=rating,
                          comment=comment or "", created_at=now_ms())
            s.add(fb)
            s.commit()
            out = {"id": fb.id, "answer_id": answer_id, "rating": rating}
        write_audit(self.db, user_id=user.id, action="feedback", question=rating, sources=[],
                    model="", latency_ms=0.0, answer_id=answer_id, actor=actor)
        return out
