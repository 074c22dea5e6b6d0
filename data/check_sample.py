#!/usr/bin/env python3
"""Validate a Mattermost bulk-import directory (import.jsonl + data/...) and print counts.

Usage:  python data/check_sample.py [data/sample-workspace]

Checks: line order, teams/channels referenced by posts exist, every poster/replier/reactor is a
member of the channel (required by the importer for O/P channels), attachment paths exist
(relative to the directory holding import.jsonl) and every file under data/ is referenced,
direct_post channel_members match a direct_channel, replies/reactions are later than their
root, timestamps are unique and within Sep–Nov 2026, guest/deactivated/admin rules.
Stdlib only. Exit code 1 if anything is wrong.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

ORDER = ["version", "team", "channel", "user", "post", "direct_channel", "direct_post"]
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{2,21}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]+$")
START = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp() * 1000)
END = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
MAX_MESSAGE = 16383
REQUIRED_POSITIONS = ["Director of Product Engineering", "Head of Content"]


def check(base: Path):
    base = Path(base)
    errors: list[str] = []
    err = errors.append
    lines = []
    with open(base / "import.jsonl", encoding="utf-8") as f:
        for i, raw in enumerate(f, 1):
            try:
                lines.append((i, json.loads(raw)))
            except json.JSONDecodeError as e:
                err(f"line {i}: invalid JSON ({e})")

    # ---- order
    if not lines or lines[0][1] != {"type": "version", "version": 1}:
        err("line 1 must be {\"type\":\"version\",\"version\":1}")
    last = -1
    for i, l in lines:
        t = l.get("type")
        if t not in ORDER:
            err(f"line {i}: unknown type {t!r}")
            continue
        if ORDER.index(t) < last:
            err(f"line {i}: {t} after {ORDER[last]} (wrong order)")
        last = max(last, ORDER.index(t))
        if t != "version" and t not in l:
            err(f"line {i}: missing object {t!r}")
    by = defaultdict(list)
    for i, l in lines:
        by[l.get("type")].append((i, l.get(l.get("type"))))

    # ---- teams / channels
    teams = {}
    for i, t in by["team"]:
        if not NAME_RE.match(t["name"]) or len(t["name"]) > 64:
            err(f"line {i}: bad team name {t['name']!r}")
        if t["name"] in teams:
            err(f"line {i}: duplicate team {t['name']}")
        if t.get("type") not in ("O", "I"):
            err(f"line {i}: team type must be O or I")
        teams[t["name"]] = t
    channels = {}
    for i, c in by["channel"]:
        key = (c["team"], c["name"])
        if c["team"] not in teams:
            err(f"line {i}: channel {key} in unknown team")
        if not NAME_RE.match(c["name"]) or len(c["name"]) > 64:
            err(f"line {i}: bad channel name {c['name']!r}")
        if c.get("type") not in ("O", "P"):
            err(f"line {i}: channel type must be O or P")
        if len(c.get("display_name", "")) > 64 or not c.get("display_name"):
            err(f"line {i}: display_name empty or > 64")
        if len(c.get("purpose", "")) > 250:
            err(f"line {i}: purpose > 250 chars")
        if len(c.get("header", "")) > 1024:
            err(f"line {i}: header > 1024 chars")
        if key in channels:
            err(f"line {i}: duplicate channel {key}")
        channels[key] = c

    # ---- users
    users = {}
    members = defaultdict(set)
    team_members = defaultdict(set)
    for i, u in by["user"]:
        name = u["username"]
        if name in users:
            err(f"line {i}: duplicate user {name}")
        users[name] = u
        if not USERNAME_RE.match(name):
            err(f"line {i}: bad username {name!r}")
        if not EMAIL_RE.match(u.get("email", "")):
            err(f"line {i}: bad email for {name}")
        roles = u.get("roles")
        if roles not in ("system_user", "system_admin system_user", "system_guest"):
            err(f"line {i}: bad roles {roles!r} for {name}")
        guest = roles == "system_guest"
        if not isinstance(u.get("delete_at"), int) or u["delete_at"] < 0:
            err(f"line {i}: delete_at must be int >= 0 for {name}")
        for tm in u.get("teams", []):
            if tm["name"] not in teams:
                err(f"line {i}: {name} in unknown team {tm['name']}")
            troles = set(tm.get("roles", "").split())
            if guest != (troles == {"team_guest"}):
                err(f"line {i}: {name} team roles {tm.get('roles')!r} inconsistent with system roles")
            team_members[tm["name"]].add(name)
            for cm in tm.get("channels", []):
                key = (tm["name"], cm["name"])
                if key not in channels:
                    err(f"line {i}: {name} member of unknown channel {key}")
                croles = set(cm.get("roles", "").split())
                if guest != (croles == {"channel_guest"}):
                    err(f"line {i}: {name} channel roles {cm.get('roles')!r} inconsistent with system roles")
                members[key].add(name)
        if guest:
            nch = sum(len(tm.get("channels", [])) for tm in u.get("teams", []))
            if len(u.get("teams", [])) != 1 or not 1 <= nch <= 2:
                err(f"line {i}: guest {name} should be in exactly one team and 1-2 channels (has {nch})")
    positions = {u.get("position") for u in users.values()}
    for p in REQUIRED_POSITIONS:
        if p not in positions:
            err(f"no user with position {p!r}")
    deactivated = [n for n, u in users.items() if u.get("delete_at", 0) > 0]
    if len(deactivated) != 1:
        err(f"expected exactly one deactivated user, got {deactivated}")
    guests = [n for n, u in users.items() if u.get("roles") == "system_guest"]
    admins = [n for n, u in users.items() if "system_admin" in u.get("roles", "")]
    if not admins:
        err("no system admin")
    for key in channels:
        if not members[key]:
            err(f"channel {key} has no members")

    # ---- posts
    referenced = set()
    stamps = Counter()
    counts_by_chan = Counter()
    replies_total = reactions_total = threads = standalone = 0

    def check_att(where, atts):
        for a in atts or []:
            p = a.get("path", "")
            referenced.add(p)
            if p.startswith("/") or ".." in Path(p).parts:
                err(f"{where}: attachment path must be relative inside the import dir: {p}")
            elif not (base / p).is_file():
                err(f"{where}: attachment not found: {p}")

    def check_time(where, t, after=None, user=None):
        if not isinstance(t, int) or not START <= t < END:
            err(f"{where}: create_at {t} outside Sep-Nov 2026")
        if after is not None and t <= after:
            err(f"{where}: create_at {t} not after its root ({after})")
        if user in users and users[user].get("delete_at", 0) and t >= users[user]["delete_at"]:
            err(f"{where}: {user} posts after being deactivated")
        stamps[t] += 1

    def check_msg(where, m):
        if not m or not m.strip():
            err(f"{where}: empty message")
        elif len(m) > MAX_MESSAGE:
            err(f"{where}: message too long ({len(m)})")

    for i, p in by["post"]:
        where = f"line {i}"
        key = (p.get("team"), p.get("channel"))
        if key not in channels:
            err(f"{where}: unknown channel {key}")
            continue
        counts_by_chan[key] += 1
        mem = members[key]
        if p.get("user") not in users:
            err(f"{where}: unknown user {p.get('user')}")
        elif p["user"] not in mem:
            err(f"{where}: {p['user']} is not a member of {key}")
        check_msg(where, p.get("message"))
        check_time(where, p.get("create_at"), user=p.get("user"))
        if channels[key].get("deleted_at") and p["create_at"] >= channels[key]["deleted_at"]:
            err(f"{where}: post in archived channel after it was archived")
        check_att(where, p.get("attachments"))
        reps = p.get("replies") or []
        if reps:
            threads += 1
            if len(reps) > 8:
                err(f"{where}: thread has {len(reps)} replies (max 8)")
        else:
            standalone += 1
        prev = p.get("create_at")
        for r in reps:
            replies_total += 1
            if r.get("user") not in mem:
                err(f"{where}: reply by {r.get('user')} who is not a member of {key}")
            check_msg(where, r.get("message"))
            check_time(f"{where} reply", r.get("create_at"), after=p["create_at"], user=r.get("user"))
            if r.get("create_at", 0) < prev:
                err(f"{where}: replies out of chronological order")
            prev = r.get("create_at", 0)
            check_att(where, r.get("attachments"))
        for rx in p.get("reactions") or []:
            reactions_total += 1
            if rx.get("user") not in mem:
                err(f"{where}: reaction by non-member {rx.get('user')}")
            if rx.get("create_at", 0) <= p["create_at"]:
                err(f"{where}: reaction before post")
            if not rx.get("emoji_name"):
                err(f"{where}: reaction without emoji_name")

    # ---- direct channels / posts
    dchannels = {}
    for i, d in by["direct_channel"]:
        ms = d.get("members") or []
        if not 2 <= len(ms) <= 8 or len(set(ms)) != len(ms):
            err(f"line {i}: direct_channel needs 2-8 distinct members")
        for m in ms:
            if m not in users:
                err(f"line {i}: unknown DM member {m}")
        k = frozenset(ms)
        if k in dchannels:
            err(f"line {i}: duplicate direct_channel {sorted(k)}")
        dchannels[k] = 0
    for i, d in by["direct_post"]:
        where = f"line {i}"
        k = frozenset(d.get("channel_members") or [])
        if k not in dchannels:
            err(f"{where}: channel_members {sorted(k)} match no direct_channel")
        else:
            dchannels[k] += 1
        if d.get("user") not in k:
            err(f"{where}: {d.get('user')} is not in channel_members")
        check_msg(where, d.get("message"))
        check_time(where, d.get("create_at"), user=d.get("user"))
        check_att(where, d.get("attachments"))
        for r in d.get("replies") or []:
            if r.get("user") not in k:
                err(f"{where}: DM reply by non-member")
            check_time(f"{where} reply", r.get("create_at"), after=d["create_at"], user=r.get("user"))
            check_att(where, r.get("attachments"))
    for k, n in dchannels.items():
        if n == 0:
            err(f"direct_channel {sorted(k)} has no posts")

    dups = [t for t, n in stamps.items() if n > 1]
    if dups:
        err(f"{len(dups)} duplicate create_at timestamps")
    on_disk = {str(p.relative_to(base)).replace("\\", "/") for p in (base / "data").rglob("*") if p.is_file()} \
        if (base / "data").is_dir() else set()
    for orphan in sorted(on_disk - referenced):
        err(f"file not referenced by any post: {orphan}")

    ctypes = Counter(c["type"] for c in channels.values())
    root_posts = len(by["post"])
    hn = sum(n for (t, c), n in counts_by_chan.items() if c == "hn-links")
    counts = {
        "teams": len(teams),
        "channels": len(channels),
        "channels public (O)": ctypes["O"],
        "channels private (P)": ctypes["P"],
        "channels archived": sum(1 for c in channels.values() if c.get("deleted_at")),
        "users": len(users),
        "guests": len(guests),
        "deactivated users": len(deactivated),
        "system admins": len(admins),
        "root posts (channels)": root_posts,
        "threads (root + replies)": threads,
        "standalone root posts": standalone,
        "replies": replies_total,
        "channel posts incl. replies": root_posts + replies_total,
        "hn-links posts": hn,
        "reactions": reactions_total,
        "DM channels": sum(1 for k in dchannels if len(k) == 2),
        "group message channels": sum(1 for k in dchannels if len(k) > 2),
        "direct posts": len(by["direct_post"]),
        "all messages": root_posts + replies_total + len(by["direct_post"]),
        "attached files": len(referenced),
    }
    return errors, counts


def report(errors, counts) -> None:
    width = max(len(k) for k in counts)
    for k, v in counts.items():
        print(f"  {k:<{width}}  {v}")
    if errors:
        print(f"\n{len(errors)} problem(s):")
        for e in errors[:200]:
            print("  -", e)
    else:
        print("\nOK: all checks passed")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    base = Path(argv[0]) if argv else Path(__file__).resolve().parent / "sample-workspace"
    errors, counts = check(base)
    report(errors, counts)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
