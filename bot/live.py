"""Everything the server runs beside the HTTP API when Mattermost is configured: the index
worker, the re-index jobs and the periodic resync (from :mod:`ingest.mattermost`) and the bot
(WebSocket, answers, slash commands). Started and stopped by the app's lifespan; the CLI's
``openops sync`` uses the ingest pieces without the bot. It lives in bot/ because it is the
one place that composes the bot with them."""

from __future__ import annotations

import asyncio
import logging

from ingest.mattermost.client import Backoff
from ingest.mattermost.jobs import JobManager
from ingest.mattermost.mirror import Mirror
from ingest.mattermost.refresh import Refresher
from ingest.mattermost.worker import IndexWorker

log = logging.getLogger("openops.bot.live")


class Live:
    def __init__(self, runtime, *, run_bot: bool = True, make_client=None):
        self.rt = runtime
        self.run_bot = run_bot
        self._make_client = make_client
        self.worker: IndexWorker | None = None
        self.jobs = JobManager(runtime, _LazyWorker(self), make_client=make_client)
        self.bot = None
        self._refresher: Refresher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resync: asyncio.Task | None = None
        self._bot_task: asyncio.Task | None = None

    @property
    def configured(self) -> bool:
        s = self.rt.settings
        return bool(self._make_client or (s.mattermost_url and s.mattermost_token))

    def client(self, **options):
        from ingest.mattermost.client import Mattermost

        if self._make_client:
            return self._make_client()
        s = self.rt.settings
        return Mattermost(s.mattermost_url, s.mattermost_token, ca_file=s.mattermost_ca_file,
                          **options)

    def _worker(self) -> IndexWorker:
        if self.worker is None:
            from ingest.pipeline import make_indexer

            self.worker = IndexWorker(make_indexer(self.rt))
            self.worker.start()
        return self.worker

    # ---- the asker's permissions, re-read before a question -------------------------------
    def refresher(self) -> Refresher:
        if self._refresher is None:
            worker = self.worker
            # a person waits on it: fail fast (one retry, 10 s) and answer from the mirror
            mirror = Mirror(self.rt.db, on_dirty=worker.poke if worker else None)
            self._refresher = Refresher(self.client(timeout=10.0, max_retries=1), mirror,
                                        refresh_s=self.rt.settings.permission_refresh_s)
        return self._refresher

    async def refresh_reader(self, who: str) -> None:
        """Re-read ``who``'s teams, channel memberships and roles from Mattermost (at most
        once per OPENOPS_PERMISSION_REFRESH_S), so a removal applies to the next question
        even in channels the bot is not in. Nothing to do without a Mattermost server."""
        if self.configured:
            await self.refresher().refresh_reader(who)

    def refresh_reader_blocking(self, who: str, timeout: float = 60.0) -> None:
        """:meth:`refresh_reader` from a worker thread (the API's synchronous routes)."""
        if not self.configured or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.refresh_reader(who), self._loop).result(timeout)

    async def deliver_summary(self, requester: str, reader: str, summary: dict
                              ) -> tuple[bool, str]:
        """A role-targeted summary to its reader by DM: (delivered, where or why not)."""
        if not self.configured:
            return False, ("not sent: Mattermost is not configured (set OPENOPS_MATTERMOST_URL "
                           "and OPENOPS_MATTERMOST_TOKEN)")
        if self.bot is None:
            return False, "not sent: the bot is not connected to Mattermost yet (see the log)"
        try:
            post_id = await self.bot.deliver_summary(requester, reader, summary)
        except Exception as exc:  # noqa: BLE001 - the summary is still returned to the asker
            log.warning("summary for %s not delivered: %s", reader, exc)
            return False, f"not sent: Mattermost refused the direct message ({exc.__class__.__name__})"
        return True, f"direct message (post {post_id})"

    async def start(self) -> None:
        if not self.configured:
            return
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._worker)
        self.jobs.worker = self.worker
        self.jobs.resume_unfinished()
        minutes = self.rt.settings.bot_resync_minutes
        if minutes > 0:
            self._resync = asyncio.create_task(self._resync_loop(minutes * 60))
        if self.run_bot:
            self._bot_task = asyncio.create_task(self._start_bot())

    async def _start_bot(self) -> None:
        """Log in and connect, retrying with backoff while Mattermost is down or starting (in
        docker compose it often starts after OpenOps): the API serves meanwhile."""
        from .bot import Bot

        backoff = Backoff(1.0, 60.0, jitter=False)
        while True:
            bot = Bot(self.rt, self.client(), self.worker, refresher=self.refresher())
            try:
                await bot.start()
            except Exception as exc:  # noqa: BLE001 - say what to fix, try again
                log.error("the Mattermost bot could not start: %s (check OPENOPS_MATTERMOST_URL, "
                          "OPENOPS_MATTERMOST_TOKEN and OPENOPS_MATTERMOST_CA_FILE); retrying in "
                          "%.0f s", exc, delay := backoff.next())
                await bot.mm.close()
                await asyncio.sleep(delay)
                continue
            self.bot = bot
            return

    async def _resync_loop(self, every_s: float) -> None:
        """The safety net under the WebSocket: events about channels the bot is not in never
        reach it, so memberships (and posts changed since each cursor) are re-read
        periodically, as a job visible at /v1/jobs."""
        while True:
            await asyncio.sleep(every_s)
            if self.jobs.running():
                continue  # a re-index is on already
            try:
                job = self.jobs.start("all", incremental=True)
                await self.jobs.wait(job["job_id"], timeout=every_s * 4)
            except Exception as exc:  # noqa: BLE001 - retried next period
                log.warning("periodic resync failed: %s", exc)

    async def stop(self) -> None:
        if self._bot_task is not None:
            self._bot_task.cancel()
            await asyncio.gather(self._bot_task, return_exceptions=True)
            self._bot_task = None
        if self._resync is not None:
            self._resync.cancel()
            self._resync = None
        if self.bot is not None:
            await self.bot.stop()
            self.bot = None
        await self.jobs.close()
        if self._refresher is not None:
            await self._refresher.mm.close()
            self._refresher = None
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)


class _LazyWorker:
    """The job manager's worker before Mattermost is configured: built on first use."""

    def __init__(self, live: Live):
        self.live = live

    def poke(self) -> None:
        self.live._worker().poke()

    def run_once(self) -> None:
        self.live._worker().run_once()
