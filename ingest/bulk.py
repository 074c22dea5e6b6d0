"""Load a Mattermost bulk export (JSONL version 1; a .jsonl file, a .zip with attachments, or a
directory holding import.jsonl) into the permission mirror and the post store.

An export is a snapshot: each ``user`` line replaces that user's team and channel memberships,
roles and deactivation; each ``direct_channel`` line replaces that conversation's participants.
Posts are upserted by a deterministic id (channel, author, create time), so re-loading the same
export changes nothing, an edited message replaces the old text, and a post or reply with
``delete_at`` > 0 is removed from the index. Channels whose content changed are marked dirty
in the same transaction, for the indexer to pick up, so a crash loses nothing."""

from __future__ import annotations

import functools
import hashlib
import json
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from rag.db import Channel, ChannelMember, Database, File, Post, Team, TeamMember, User
from rag.profile import record_posts, record_reaction

from . import ids
from .files.limits import LimitExceeded, Limits, check_size, default_limits

KNOWN_TYPES = {
    "version", "team", "channel", "user", "bot", "post", "direct_channel", "direct_post",
    "role", "scheme", "emoji",
}
GUEST_ROLES = {"system_guest", "team_guest", "channel_guest"}


class ExportError(Exception):
    """The export as a whole cannot be read (missing file, no JSONL inside a zip...)."""


@dataclass
class LoadReport:
    lines: int = 0
    types: Counter = field(default_factory=Counter)
    skipped_types: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    posts_new: int = 0
    posts_changed: int = 0
    posts_deleted: int = 0
    files_ok: int = 0
    files_failed: list[str] = field(default_factory=list)
    dirty_channels: set[str] = field(default_factory=set)

    @property
    def skipped(self) -> int:
        return sum(self.skipped_types.values())


class _Source:
    """Uniform access to the JSONL lines and the attachment files of an export."""

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._base: Path | None = None
        if not path.exists():
            raise ExportError(f"{path}: no such file or directory")
        if path.is_dir():
            jsonl = path / "import.jsonl"
            if not jsonl.exists():
                found = sorted(path.glob("*.jsonl"))
                if not found:
                    raise ExportError(f"{path}: no import.jsonl (or other .jsonl) inside")
                jsonl = found[0]
            self._jsonl = jsonl
            self._base = path
        elif zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            names = [n for n in self._zip.namelist() if n.endswith(".jsonl")]
            if not names:
                raise ExportError(f"{path}: the zip holds no .jsonl file")
            self._jsonl_name = "import.jsonl" if "import.jsonl" in names else sorted(names)[0]
        else:
            self._jsonl = path
            self._base = path.parent

    def lines(self) -> Iterator[tuple[int, str]]:
        if self._zip is not None:
            with self._zip.open(self._jsonl_name) as fh:
                for n, raw in enumerate(fh, 1):
                    yield n, raw.decode("utf-8", errors="replace")
        else:
            with open(self._jsonl, encoding="utf-8", errors="replace") as fh:
                yield from enumerate(fh, 1)

    def read(self, rel: str, limits: Limits) -> bytes:
        """An attachment's bytes; one over the size limit is refused before it is read."""
        clean = str(PurePosixPath(rel.replace("\\", "/")))
        name = PurePosixPath(clean).name
        if self._zip is not None:
            for candidate in (clean, clean.lstrip("/"), f"data/{clean}"):
                try:
                    info = self._zip.getinfo(candidate)
                except KeyError:
                    continue
                check_size(name, info.file_size, limits)
                return self._zip.read(info)
            raise FileNotFoundError(f"{rel} is not in the zip")
        assert self._base is not None
        target = (self._base / clean).resolve()
        if self._base.resolve() not in target.parents:
            raise FileNotFoundError(f"{rel} points outside the export")
        check_size(name, target.stat().st_size, limits)
        return target.read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _validate_post(p: dict) -> None:
    """Everything a post line needs, checked before any of it is written."""
    for item in [p, *(p.get("replies") or [])]:
        if not isinstance(item, dict):
            raise ValueError("a reply is not an object")
        if not isinstance(item.get("user"), str) or not item["user"]:
            raise ValueError("post without a user")
        if not isinstance(item.get("message"), str):
            raise ValueError("post without a message string")
        int(item["create_at"])


def _roles_guest(*roles: str | None) -> bool:
    return any(r in GUEST_ROLES for s in roles if s for r in s.split())


class BulkLoader:
    def __init__(
        self,
        db: Database,
        *,
        extract: Callable[[str, bytes], Any] | None = None,
        limits: Limits | None = None,
        on_line: Callable[[LoadReport], None] | None = None,
        commit_every: int = 500,
    ):
        self.db = db
        self.limits = limits or default_limits()
        self._extract = extract
        self.on_line = on_line
        self.commit_every = commit_every
        self._known: dict[type, set[str]] = {}
        self._prefetched: dict[str, Post] | None = None
        # posts written since the last profile update, and the reactions they carry
        self._touched: list[Post] = []
        self._reactions: list[tuple[str, str, str, int]] = []

    def _exists(self, s: Session, model: type, key: str) -> bool:
        """Whether a row exists, remembering hits (the session's identity map is weak)."""
        known = self._known.setdefault(model, set())
        if key in known:
            return True
        if s.get(model, key) is not None:
            known.add(key)
            return True
        return False

    # ---- entry point ----------------------------------------------------------------------
    def load(self, path: str | Path) -> LoadReport:
        src = _Source(Path(path))
        report = LoadReport()
        pending_dirty: set[str] = set()
        batch: list[tuple[int, str, dict]] = []
        try:
            with self.db.session() as s:
                for n, raw in src.lines():
                    if not raw.strip():
                        continue
                    report.lines += 1
                    try:
                        obj = json.loads(raw)
                        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
                            raise ValueError("not an object with a string 'type'")
                    except ValueError as exc:
                        report.errors.append(f"line {n}: malformed JSON ({exc})")
                        continue
                    kind = obj["type"]
                    report.types[kind] += 1
                    if kind in ("post", "direct_post"):
                        # posts come in bulk: look up the existing ones a batch at a time
                        batch.append((n, kind, obj))
                        if len(batch) >= 250:
                            self._post_batch(s, src, batch, report, pending_dirty)
                            batch = []
                            self._commit(s, pending_dirty, report)
                    else:
                        if batch:
                            self._post_batch(s, src, batch, report, pending_dirty)
                            batch = []
                            self._commit(s, pending_dirty, report)
                        try:
                            with s.begin_nested():
                                self._apply(s, src, kind, obj, report, pending_dirty)
                        except (KeyError, TypeError, ValueError) as exc:
                            report.errors.append(f"line {n}: invalid {kind} ({exc!s})")
                    if report.lines % self.commit_every == 0 and not batch:
                        self._commit(s, pending_dirty, report)
                    if self.on_line:
                        self.on_line(report)
                if batch:
                    self._post_batch(s, src, batch, report, pending_dirty)
                self._commit(s, pending_dirty, report)
        finally:
            src.close()
        return report

    def _post_batch(self, s: Session, src: _Source, batch: list[tuple[int, str, dict]],
                    report: LoadReport, dirty: set[str]) -> None:
        """Apply post lines; validated before anything is written, so no savepoint is needed."""
        wanted: set[str] = set()
        for _, kind, obj in batch:
            try:
                p = obj[kind]
                _validate_post(p)
                cid = (ids.channel_id(p["team"], p["channel"]) if kind == "post"
                       else ids.direct_channel_id([str(m) for m in p["channel_members"]]))
                pid = ids.post_id(cid, p["user"], int(p["create_at"]))
                wanted.add(pid)
                wanted.update(ids.reply_id(pid, r["user"], int(r["create_at"]))
                              for r in p.get("replies") or [])
            except (KeyError, TypeError, ValueError):
                continue  # reported when the line is applied
        self._prefetched = {p.id: p for p in s.scalars(
            select(Post).where(Post.id.in_(list(wanted))))} if wanted else {}
        try:
            for n, kind, obj in batch:
                try:
                    self._apply(s, src, kind, obj, report, dirty)
                except (KeyError, TypeError, ValueError) as exc:
                    report.errors.append(f"line {n}: invalid {kind} ({exc!s})")
        finally:
            self._prefetched = None
        self._profile_signals(s)

    def _profile_signals(self, s: Session) -> None:
        """What the posts just written say about their authors, the people they mention and
        the people who reacted to them (rag/profile.py)."""
        if self._touched:
            s.flush()
            record_posts(s, self._touched)
        for uid, pid, emoji, at in self._reactions:
            if self._exists(s, User, uid):
                record_reaction(s, uid, pid, emoji, added=True, at=at)
        self._touched, self._reactions = [], []

    def _commit(self, s: Session, dirty: set[str], report: LoadReport) -> None:
        if dirty:
            s.execute(update(Channel).where(Channel.id.in_(list(dirty))).values(
                dirty=True, dirty_seq=Channel.dirty_seq + 1))
            report.dirty_channels |= dirty
            dirty.clear()
        s.commit()

    # ---- line types -----------------------------------------------------------------------
    def _apply(self, s: Session, src: _Source, kind: str, obj: dict, report: LoadReport,
               dirty: set[str]) -> None:
        if kind == "version":
            if obj.get("version") != 1:
                raise ValueError(f"unsupported export version {obj.get('version')!r}")
        elif kind == "team":
            self._team(s, obj["team"])
        elif kind == "channel":
            self._channel(s, obj["channel"])
        elif kind == "user":
            self._user(s, obj["user"], report)
        elif kind == "bot":
            self._bot(s, obj["bot"])
        elif kind == "direct_channel":
            self._direct_channel(s, obj["direct_channel"])
        elif kind == "post":
            p = obj["post"]
            _validate_post(p)
            cid = ids.channel_id(p["team"], p["channel"])
            if not self._exists(s, Channel, cid):
                raise ValueError(f"post in unknown channel {p['team']}/{p['channel']}")
            self._post(s, src, cid, p, report, dirty)
        elif kind == "direct_post":
            p = obj["direct_post"]
            _validate_post(p)
            members = [str(m) for m in p["channel_members"]]
            cid = ids.direct_channel_id(members)
            if not self._exists(s, Channel, cid):
                self._direct_channel(s, {"members": members})
            self._post(s, src, cid, p, report, dirty)
        elif kind in KNOWN_TYPES:
            report.skipped_types[kind] += 1  # roles, schemes, emoji: nothing to index
        else:
            report.skipped_types[kind] += 1

    def _team(self, s: Session, t: dict) -> None:
        tid = ids.team_id(t["name"])
        team = s.get(Team, tid) or Team(id=tid, name=t["name"])
        team.display_name = t.get("display_name") or t["name"]
        team.type = t.get("type") or "O"
        team.delete_at = int(t.get("delete_at") or t.get("deleted_at") or 0)
        s.add(team)

    def _channel(self, s: Session, c: dict) -> None:
        if s.get(Team, ids.team_id(c["team"])) is None:
            raise ValueError(f"channel {c['name']!r} names unknown team {c['team']!r}")
        ctype = c.get("type") or "O"
        if ctype not in ("O", "P"):
            raise ValueError(f"channel type must be O or P, not {ctype!r}")
        cid = ids.channel_id(c["team"], c["name"])
        ch = s.get(Channel, cid)
        if ch is None:
            ch = Channel(id=cid, name=c["name"], chunk_count=0, index_version=0, dirty=False)
        ch.team_id = ids.team_id(c["team"])
        ch.display_name = c.get("display_name") or c["name"]
        if ch.type and ch.type != ctype:
            ch.dirty = True  # chunk metadata carries the type
        ch.type = ctype
        ch.purpose = c.get("purpose") or ""
        ch.header = c.get("header") or ""
        ch.delete_at = int(c.get("deleted_at") or c.get("delete_at") or 0)
        s.add(ch)

    def _upsert_user(self, s: Session, username: str) -> User:
        uid = ids.user_id(username)
        user = s.get(User, uid)
        if user is None:
            user = User(id=uid, username=username)
            s.add(user)
        return user

    def _user(self, s: Session, u: dict, report: LoadReport) -> None:
        user = self._upsert_user(s, u["username"])
        for f in ("email", "first_name", "last_name", "nickname", "position", "locale"):
            setattr(user, f, u.get(f) or "")
        user.roles = u.get("roles") or "system_user"
        user.delete_at = int(u.get("delete_at") or 0)
        teams = u.get("teams") or []
        guest = _roles_guest(user.roles) or any(
            _roles_guest(t.get("roles"), *(c.get("roles") for c in t.get("channels") or []))
            for t in teams
        )
        user.is_guest = guest
        s.flush()
        # the export is a snapshot of this user's memberships: make the mirror match it,
        # touching only what changed (most users' memberships do not change between exports)
        want_teams: dict[str, str] = {}
        want_channels: dict[str, str] = {}
        for t in teams:
            tid = ids.team_id(t["name"])
            if not self._exists(s, Team, tid):
                report.errors.append(f"user {user.username}: unknown team {t['name']!r} skipped")
                continue
            want_teams[tid] = t.get("roles") or "team_user"
            for c in t.get("channels") or []:
                cid = ids.channel_id(t["name"], c["name"])
                if not self._exists(s, Channel, cid):
                    report.errors.append(
                        f"user {user.username}: unknown channel {t['name']}/{c['name']} skipped"
                    )
                    continue
                want_channels[cid] = c.get("roles") or "channel_user"
        have_teams = {m.team_id: m for m in s.scalars(
            select(TeamMember).where(TeamMember.user_id == user.id))}
        have_channels = {m.channel_id: m for m in s.scalars(
            select(ChannelMember).join(Channel, Channel.id == ChannelMember.channel_id).where(
                ChannelMember.user_id == user.id, Channel.type.in_(("O", "P"))))}
        for tid, m in have_teams.items():
            if tid not in want_teams:
                s.delete(m)
            elif m.roles != want_teams[tid]:
                m.roles = want_teams[tid]
        for tid, roles in want_teams.items():
            if tid not in have_teams:
                s.add(TeamMember(team_id=tid, user_id=user.id, roles=roles))
        for cid, m in have_channels.items():
            if cid not in want_channels:
                s.delete(m)
            elif m.roles != want_channels[cid]:
                m.roles = want_channels[cid]
        for cid, roles in want_channels.items():
            if cid not in have_channels:
                s.add(ChannelMember(channel_id=cid, user_id=user.id, roles=roles))
        s.flush()

    def _bot(self, s: Session, b: dict) -> None:
        user = self._upsert_user(s, b["username"])
        user.first_name = b.get("display_name") or b["username"]
        user.is_bot = True
        user.delete_at = int(b.get("delete_at") or 0)

    def _direct_channel(self, s: Session, d: dict) -> None:
        members = sorted({str(m) for m in (d.get("members") or d.get("participants") or [])})
        if len(members) < 1:
            raise ValueError("direct_channel without members")
        cid = ids.direct_channel_id(members)
        ch = s.get(Channel, cid)
        if ch is None:
            ch = Channel(id=cid, team_id=None, chunk_count=0, index_version=0, dirty=False)
        ch.type = "D" if len(members) <= 2 else "G"
        uids = [ids.user_id(m) for m in members]
        ch.name = "__".join(sorted(uids)) if ch.type == "D" else cid
        ch.display_name = ", ".join(f"@{m}" for m in members)
        s.add(ch)
        s.flush()
        s.execute(delete(ChannelMember).where(ChannelMember.channel_id == cid))
        for m in members:
            self._upsert_user(s, m)
        s.flush()
        for uid in uids:
            s.add(ChannelMember(channel_id=cid, user_id=uid))
        s.flush()

    def _post(self, s: Session, src: _Source, cid: str, p: dict, report: LoadReport,
              dirty: set[str]) -> None:
        username = p["user"]
        create_at = int(p["create_at"])
        pid = ids.post_id(cid, username, create_at)
        root_deleted = int(p.get("delete_at") or 0)
        self._store_post(s, cid, pid, "", p, report, dirty)
        self._attachments(s, src, cid, pid, pid, p, report, dirty)
        for r in p.get("replies") or []:
            rid = ids.reply_id(pid, r["user"], int(r["create_at"]))
            if root_deleted and not r.get("delete_at"):
                r = {**r, "delete_at": root_deleted}  # deleting a root deletes its thread
            self._store_post(s, cid, rid, pid, r, report, dirty)
            self._attachments(s, src, cid, rid, pid, r, report, dirty)

    def _store_post(self, s: Session, cid: str, pid: str, root: str, p: dict,
                    report: LoadReport, dirty: set[str]) -> None:
        uid = ids.user_id(p["user"])
        if not self._exists(s, User, uid):
            self._upsert_user(s, p["user"])
            self._known.setdefault(User, set()).add(uid)
        message = p["message"]
        values = dict(
            channel_id=cid, root_id=root, user_id=uid, message=message,
            type=p.get("type") or "", create_at=int(p["create_at"]),
            edit_at=int(p.get("edit_at") or 0), delete_at=int(p.get("delete_at") or 0),
        )
        post = (self._prefetched.get(pid) if self._prefetched is not None
                else s.get(Post, pid))
        if post is None:
            new = Post(id=pid, **values)
            s.add(new)
            if self._prefetched is not None:
                self._prefetched[pid] = new  # a repeated line in the same batch
            report.posts_new += 1
            dirty.add(cid)
            self._touched.append(new)
            self._post_reactions(pid, p)
            return
        if any(getattr(post, k) != v for k, v in values.items()):
            if values["delete_at"] and not post.delete_at:
                report.posts_deleted += 1
            else:
                report.posts_changed += 1
            for k, v in values.items():
                setattr(post, k, v)
            dirty.add(cid)
            self._touched.append(post)
        self._post_reactions(pid, p)

    def _post_reactions(self, pid: str, p: dict) -> None:
        for r in p.get("reactions") or []:
            if isinstance(r, dict) and r.get("user") and r.get("emoji_name"):
                self._reactions.append((ids.user_id(str(r["user"])), pid, str(r["emoji_name"]),
                                        int(r.get("create_at") or 0)))

    def _attachments(self, s: Session, src: _Source, cid: str, pid: str, root: str, p: dict,
                     report: LoadReport, dirty: set[str]) -> None:
        for att in p.get("attachments") or []:
            rel = att.get("path") if isinstance(att, dict) else None
            if not rel:
                report.files_failed.append(f"post {pid}: attachment without a path")
                continue
            name = PurePosixPath(rel).name
            fid = ids.file_id(pid, rel)
            existing = s.get(File, fid)
            try:
                data = src.read(rel, self.limits)
            except LimitExceeded as exc:
                report.files_failed.append(f"{name}: {exc}")
                continue
            except (OSError, KeyError) as exc:
                report.files_failed.append(f"{name}: cannot read ({exc})")
                continue
            sha = hashlib.sha256(data).hexdigest()
            deleted = int(p.get("delete_at") or 0)
            if (existing is not None and existing.sha256 == sha and existing.delete_at == deleted
                    and not existing.error):
                report.files_ok += 1
                continue
            text, kind, error = "", "file", ""
            try:
                if self._extract is None:
                    from .files import extract as default_extract

                    self._extract = functools.partial(default_extract, limits=self.limits)
                res = self._extract(name, data)
                text, kind = res.text, res.kind
                report.files_ok += 1
            except Exception as exc:  # noqa: BLE001 - one bad file must never stop the ingest
                error = str(exc) or exc.__class__.__name__
                report.files_failed.append(f"{name}: {error}")
            f = existing or File(id=fid, post_id=pid, channel_id=cid, name=name)
            f.text, f.kind, f.error, f.sha256 = text, kind, error, sha
            f.create_at = int(p.get("create_at") or 0)
            f.delete_at = deleted
            s.add(f)
            dirty.add(cid)
