"""Build small Mattermost bulk exports (JSONL v1) for tests, and serve the same workspace from
the Mattermost double (:func:`seed_double`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

T0 = 1_790_000_000_000  # 2026-09-21


@dataclass
class WS:
    teams: list[dict] = field(default_factory=list)
    channels: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)
    posts: list[dict] = field(default_factory=list)
    directs: list[dict] = field(default_factory=list)
    dposts: list[dict] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # raw lines appended as they are

    def team(self, name: str) -> WS:
        self.teams.append({"name": name, "display_name": name.title(), "type": "O"})
        return self

    def channel(self, team: str, name: str, type_: str = "O", archived: bool = False) -> WS:
        c = {"team": team, "name": name, "display_name": name.replace("-", " ").title(),
             "type": type_}
        if archived:
            c["deleted_at"] = T0
        self.channels.append(c)
        return self

    def user(self, username: str, teams: dict[str, list[str]], *, guest: bool = False,
             deactivated: bool = False, position: str = "", locale: str = "") -> WS:
        first, _, last = username.partition(".")
        self.users.append({
            "username": username, "email": f"{username}@example.com",
            "first_name": first.title(), "last_name": last.title(), "position": position,
            **({"locale": locale} if locale else {}),
            "roles": "system_guest" if guest else "system_user",
            "delete_at": T0 if deactivated else 0,
            "teams": [
                {"name": t, "roles": "team_guest" if guest else "team_user",
                 "channels": [{"name": c, "roles": "channel_guest" if guest else "channel_user"}
                              for c in chans]}
                for t, chans in teams.items()
            ],
        })
        return self

    def post(self, team: str, channel: str, user: str, message: str, at: int = 0,
             replies: list[tuple[str, str]] = (), attachments: list[str] = (), **extra) -> WS:
        p = {"team": team, "channel": channel, "user": user, "message": message,
             "create_at": T0 + at * 60_000, "props": {},
             "replies": [{"user": u, "message": m, "create_at": T0 + at * 60_000 + (i + 1) * 1000}
                         for i, (u, m) in enumerate(replies)],
             "attachments": [{"path": a} for a in attachments], **extra}
        self.posts.append(p)
        return self

    def direct(self, members: list[str], user: str, message: str, at: int = 0) -> WS:
        if not any(sorted(d["members"]) == sorted(members) for d in self.directs):
            self.directs.append({"members": members})
        self.dposts.append({"channel_members": members, "user": user, "message": message,
                            "create_at": T0 + at * 60_000})
        return self

    def lines(self) -> list[str]:
        out = [json.dumps({"type": "version", "version": 1})]
        out += [json.dumps({"type": "team", "team": t}) for t in self.teams]
        out += [json.dumps({"type": "channel", "channel": c}) for c in self.channels]
        out += [json.dumps({"type": "user", "user": u}) for u in self.users]
        out += [json.dumps({"type": "post", "post": p}) for p in self.posts]
        out += [json.dumps({"type": "direct_channel", "direct_channel": d}) for d in self.directs]
        out += [json.dumps({"type": "direct_post", "direct_post": d}) for d in self.dposts]
        return out + self.extra

    def write(self, path: Path) -> Path:
        path.write_text("\n".join(self.lines()) + "\n")
        return path


def seed_double(double, ws: WS, *, creator: str) -> dict:
    """Serve ``ws`` from the Mattermost double: one team, the bot a system admin and a member
    of every channel, real (server-made) ids. ``creator`` creates the channels. Returns the
    ids: ``team``, ``users`` and ``channels`` by name (a DM as ``dm:<first>-<first>``),
    ``roots`` by message."""
    team = double.add_team("acme", "Acme")
    bot, _ = double.add_bot("openops", "OpenOps", roles="system_user system_admin")
    users = {"openops": bot["id"]}
    for u in ws.users:
        users[u["username"]] = double.add_user(u["username"], u["first_name"], u["last_name"])["id"]
    for uid in users.values():
        double.add_to_team(team["id"], uid)
    channels = {}
    for c in ws.channels:
        ch = double.add_channel(team["id"], c["name"], c["type"], c["display_name"],
                                creator_id=users[creator])
        channels[c["name"]] = ch["id"]
        double.add_member(ch["id"], users["openops"])
    for u in ws.users:
        for t in u["teams"]:
            for c in t["channels"]:
                double.add_member(channels[c["name"]], users[u["username"]])
    roots = {}
    for p in ws.posts:
        root = double.post(users[p["user"]], channels[p["channel"]], p["message"],
                           create_at=p["create_at"])
        roots[p["message"]] = root["id"]
        for r in p["replies"]:
            double.post(users[r["user"]], channels[p["channel"]], r["message"], root_id=root["id"],
                        create_at=r["create_at"])
    for d in ws.dposts:
        a, b = (users[m] for m in d["channel_members"])
        dm = double.direct_channel(a, b)
        channels["dm:" + "-".join(m.split(".")[0] for m in d["channel_members"])] = dm["id"]
        double.post(users[d["user"]], dm["id"], d["message"], create_at=d["create_at"])
    return {"team": team["id"], "users": users, "channels": channels, "roots": roots}
