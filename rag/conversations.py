"""Conversations: the store of questions and answers (a summary is a conversation whose
context is its source posts), and the history gate that decides who may continue one.

A conversation records every channel whose text reached the model in it; its history (earlier
questions, answers, summary text) is lent only to a reply whose scope holds every one of them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import Conversation, ConversationMessage, Database, User
from .errors import NotFound
from .permissions import Scope, unreadable
from .util import now_ms


class Conversations:
    def __init__(self, db: Database):
        self.db = db

    def gate(self, conversation_id: str | None, user: User, scope: Scope,
             reply_scope: Scope | None = None
             ) -> tuple[Conversation | None, list[ConversationMessage], bool]:
        """The conversation, its history, and whether the reply may use what it holds.

        ``scope`` is what the asker may read, ``reply_scope`` what the reply may use (narrower
        where it is posted for an audience, as the bot's replies in channels are). The history
        (earlier questions, answers, summary text) is lent only when every channel the
        conversation drew on is in ``reply_scope``."""
        if not conversation_id:
            return None, [], True
        reply_scope = scope if reply_scope is None else reply_scope
        with self.db.session() as s:
            conv = s.get(Conversation, conversation_id)
            history = [] if conv is None else list(s.scalars(select(ConversationMessage).where(
                ConversationMessage.conversation_id == conv.id).order_by(ConversationMessage.id)))
        used = set(json.loads(conv.channel_ids or "[]")) if conv is not None else set()
        # the owner, or anyone who may read every channel it drew on (never an empty set:
        # an uploaded transcript's summary stays its uploader's); to anyone else it does not
        # exist, with the same error as an id that never did
        if conv is None or (conv.user_id != user.id
                            and not (used and used <= scope.channel_ids)):
            raise NotFound(unreadable("conversation", conversation_id)
                           + ": omit conversation_id to start a new one")
        allowed = used <= reply_scope.channel_ids
        return conv, (history if allowed else []), allowed

    def fork(self, conv: Conversation, user: User, history: list[ConversationMessage]) -> str:
        """Someone else's conversation is never written to: the asker continues in a copy."""
        fork_id = uuid.uuid4().hex
        with self.db.session() as s:
            s.add(Conversation(id=fork_id, user_id=user.id, kind=conv.kind, title=conv.title,
                               source_post_ids=conv.source_post_ids,
                               channel_ids=conv.channel_ids, params=conv.params,
                               created_at=now_ms()))
            for m in history:
                s.add(ConversationMessage(conversation_id=fork_id, role=m.role, content=m.content,
                                          answer_id=m.answer_id, created_at=m.created_at))
            s.commit()
        return fork_id

    def add_turn(self, s: Session, conv_id: str | None, user: User, question: str, text: str,
                 drawn: Iterable[str], answer_id: str, t: int) -> str:
        """A question and its answer, in the caller's transaction; a new conversation when
        ``conv_id`` is None. ``drawn``: every channel whose text reached the model, cited or
        not: who may later see this conversation's history is decided by it."""
        drawn = set(drawn)
        if conv_id is None:
            conv = Conversation(id=uuid.uuid4().hex, user_id=user.id, kind="ask",
                                title=question[:200], created_at=t,
                                channel_ids=json.dumps(sorted(drawn)))
            s.add(conv)
            conv_id = conv.id
        else:
            row = s.get(Conversation, conv_id)
            assert row is not None
            used = set(json.loads(row.channel_ids or "[]")) | drawn
            row.channel_ids = json.dumps(sorted(used))
        s.add(ConversationMessage(conversation_id=conv_id, role="user", content=question,
                                  created_at=t))
        s.add(ConversationMessage(conversation_id=conv_id, role="assistant", content=text,
                                  answer_id=answer_id, created_at=t + 1))
        return conv_id

    def add_summary(self, s: Session, *, user: User, title: str, text: str,
                    source_post_ids: list[str], channels: list[str], params: dict,
                    answer_id: str, t: int) -> str:
        """A summary as a conversation whose context is its source posts."""
        conv_id = uuid.uuid4().hex
        s.add(Conversation(id=conv_id, user_id=user.id, kind="summary", title=title,
                           source_post_ids=json.dumps(source_post_ids),
                           channel_ids=json.dumps(channels), params=json.dumps(params),
                           created_at=t))
        s.add(ConversationMessage(conversation_id=conv_id, role="assistant", content=text,
                                  answer_id=answer_id, created_at=t))
        return conv_id
