"""Sending watch alerts (the ``watch_alerts`` outbox that :mod:`rag.watches` fills as threads
are indexed) as direct messages to their owners, once each, across restarts.

An alert is claimed (``pending`` -> ``sending``) in the database before anything is posted,
and marked ``sent`` after. Its post carries the alert's id in ``props`` (``openops_alert``):
an alert found ``sending`` (the bot stopped between the claim and the mark, or Mattermost
failed mid-call) is resolved by looking for that post in the DM first, and posted only if it
is not there. The owner's permissions are re-read from Mattermost and the gate applied at send
time: an owner who may no longer read the channel gets nothing (``skipped``).

One sender per deployment (like the bot itself): two bots on one database could both resolve
the same ``sending`` alert."""

from __future__ import annotations

import asyncio
import logging

from ingest.mattermost.client import MattermostError
from ingest.mattermost.sync import _ordered

log = logging.getLogger("openops.bot.alerts")

PROP = "openops_alert"
SWEEP_S = 60.0  # alerts raised by another process (a CLI ingest, a job) are picked up this often


async def open_dm(bot, user_id: str) -> dict:
    """The bot's DM with ``user_id``, known to the mirror. Opening it may create it, and then
    ``direct_added`` makes the event handler write the same channel row at the same time:
    whichever writes second finds it there."""
    dm = await bot.mm.direct_channel(bot.me["id"], user_id)
    await asyncio.to_thread(bot.mirror.upsert_channel, dm)  # it may race direct_added
    return dm


class AlertSender:
    def __init__(self, bot):
        self.bot = bot
        self._due = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0

    @property
    def watches(self):
        return self.bot.rt.watches

    def wake(self) -> None:
        """From any thread (the indexer's): alerts are pending."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._due.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.watches.on_pending.append(self.wake)
        try:
            while True:
                self._due.clear()
                try:
                    await self.deliver()
                except MattermostError as exc:
                    log.warning("sending alerts paused: %s", exc)
                except Exception:  # noqa: BLE001 - the database, say: try again next time
                    log.exception("sending alerts failed; retried on the next wake-up")
                try:
                    await asyncio.wait_for(self._due.wait(), SWEEP_S)
                except TimeoutError:
                    pass
        finally:
            if self.wake in self.watches.on_pending:
                self.watches.on_pending.remove(self.wake)

    async def deliver(self) -> int:
        """Resolve what a previous run left ``sending``, then send what is ``pending``."""
        done = 0
        for alert_id in await asyncio.to_thread(self.watches.unfinished):
            done += await self._guarded(alert_id, resumed=True)
        while ids := await asyncio.to_thread(self.watches.pending):
            progressed = False
            for alert_id in ids:
                if await asyncio.to_thread(self.watches.claim, alert_id):
                    progressed = True
                    done += await self._guarded(alert_id, resumed=False)
            if not progressed:
                break
        return done

    async def _guarded(self, alert_id: int, *, resumed: bool) -> int:
        """:meth:`_send`; Mattermost failing leaves the alert ``sending`` (resolved on the next
        pass, without a duplicate), anything else drops it (``skipped``) rather than retrying
        a broken alert forever."""
        try:
            return await self._send(alert_id, resumed=resumed)
        except MattermostError:
            raise
        except Exception:  # noqa: BLE001 - one bad alert must not stop the others
            log.exception("alert %s could not be sent: skipped", alert_id)
            await asyncio.to_thread(self.watches.finish, alert_id, "skipped")
            return 0

    async def _send(self, alert_id: int, *, resumed: bool) -> int:
        got = await asyncio.to_thread(self.watches.alert, alert_id)
        if got is None:
            return 0
        alert, _ = got
        bot = self.bot
        dm = await open_dm(bot, alert.user_id)
        if resumed and await self._posted(dm["id"], alert_id, alert.created_at):
            await asyncio.to_thread(self.watches.finish, alert_id, "sent")
            return 0
        await bot.refresh_reader(alert.user_id)  # may they still read it? ask the server
        text = await asyncio.to_thread(self.watches.message, alert_id)
        if text is None:
            await asyncio.to_thread(self.watches.finish, alert_id, "skipped")
            return 0
        post = await bot.mm.create_post(dm["id"], text, props={PROP: str(alert_id)})
        await asyncio.to_thread(bot._record, [post["id"]], channel_id=dm["id"], root_id="",
                                trigger_id=f"alert:{alert_id}", user_id=alert.user_id,
                                kind="notice", answer_id=None, conversation_id=None)
        await asyncio.to_thread(self.watches.finish, alert_id, "sent")
        self.sent += 1
        return 1

    async def _posted(self, dm_id: str, alert_id: int, since: int) -> bool:
        """Whether the DM already holds this alert's post (one Mattermost took before the
        bot could mark it sent)."""
        got = await self.bot.mm.posts_page(dm_id, since=max(1, since - 1))
        return any(str((p.get("props") or {}).get(PROP)) == str(alert_id)
                   and p.get("user_id") == self.bot.me["id"] and not p.get("delete_at")
                   for p in _ordered(got))
