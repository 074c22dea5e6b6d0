"""Small helpers shared across the packages: the clock and Mattermost permalinks."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """Now, in Unix milliseconds (Mattermost's unit for every timestamp)."""
    return int(time.time() * 1000)


def fmt_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def permalink(base: str | None, team_name: str | None, post_id: str) -> str | None:
    """A post's permalink under ``base`` (the Mattermost site URL), or None without one.
    DMs and group messages have no team; Mattermost resolves ``/_redirect/pl/`` for them."""
    if not base or not post_id:
        return None
    return f"{base}/{team_name or '_redirect'}/pl/{post_id}"
