"""Deterministic Mattermost-shaped ids (26 lower-case base32 characters) for bulk-export data,
which carries names, not ids. The same export always yields the same ids."""

from __future__ import annotations

import base64
import hashlib


def mmid(*parts: object) -> str:
    digest = hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:26]


def team_id(name: str) -> str:
    return mmid("team", name)


def channel_id(team: str, name: str) -> str:
    return mmid("channel", team, name)


def user_id(username: str) -> str:
    return mmid("user", username)


def direct_channel_id(usernames: list[str]) -> str:
    return mmid("direct", *sorted(set(usernames)))


def post_id(channel: str, username: str, create_at: int) -> str:
    return mmid("post", channel, username, create_at)


def reply_id(root: str, username: str, create_at: int) -> str:
    return mmid("reply", root, username, create_at)


def file_id(post: str, path: str) -> str:
    return mmid("file", post, path)
