"""Re-index jobs from the live server: started by ``POST /v1/reindex``, watched through
``GET /v1/jobs/{id}``, cancelled by ``DELETE``. State, progress and the resume cursor live in
the ``jobs`` table, so a job that was running when the process died resumes on the next start
(``resume_unfinished``) from the last channel it finished."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from rag.db import Channel, Job
from rag.errors import InvalidRequest, NotFound
from rag.util import now_ms

from .client import Mattermost, MattermostError
from .mirror import Mirror
from .sync import Cancelled, Syncer, SyncProgress
from .worker import IndexWorker

log = logging.getLogger("openops.mattermost.jobs")

FINAL = ("done", "failed", "cancelled")


def check_scope(scope) -> dict | str:
    if scope == "all":
        return "all"
    if isinstance(scope, dict) and len(scope) == 1:
        key, value = next(iter(scope.items()))
        if key in ("team_id", "channel_id") and isinstance(value, str) and value:
            return {key: value}
    raise InvalidRequest('scope: must be "all", {"team_id": "..."} or {"channel_id": "..."}')


class JobManager:
    def __init__(self, runtime, worker: IndexWorker, make_client=None):
        self.rt = runtime
        self.worker = worker
        self._make_client = make_client
        self._tasks: dict[str, asyncio.Task] = {}
        self._cancel: set[str] = set()

    def client(self) -> Mattermost:
        if self._make_client:
            return self._make_client()
        s = self.rt.settings
        if not (s.mattermost_url and s.mattermost_token):
            raise InvalidRequest("re-indexing from Mattermost needs OPENOPS_MATTERMOST_URL and "
                                 "OPENOPS_MATTERMOST_TOKEN")
        return Mattermost(s.mattermost_url, s.mattermost_token, ca_file=s.mattermost_ca_file)

    # ---- API ------------------------------------------------------------------------------
    def start(self, scope, *, incremental: bool = False) -> dict:
        """``incremental``: posts changed since each channel's cursor only (users, teams,
        channels and memberships are always read whole)."""
        scope = check_scope(scope)
        self.client()  # configuration errors now, as a 4xx, not later inside the job
        job_id = uuid.uuid4().hex
        with self.rt.db.session() as s:
            s.add(Job(id=job_id, kind="resync" if incremental else "reindex",
                      params=json.dumps({"scope": scope, "incremental": incremental}),
                      status="queued", progress=json.dumps(SyncProgress().as_dict()), cursor="{}",
                      error="", created_at=now_ms(), updated_at=now_ms()))
            s.commit()
        self._launch(job_id)
        return self.get(job_id)

    def get(self, job_id: str) -> dict:
        with self.rt.db.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"job {job_id!r} does not exist")
            return {"job_id": job.id, "kind": job.kind, "status": job.status,
                    "params": json.loads(job.params), "progress": json.loads(job.progress),
                    "error": job.error or None, "created_at": job.created_at,
                    "updated_at": job.updated_at}

    def cancel(self, job_id: str) -> dict:
        job = self.get(job_id)
        if job["status"] in FINAL:
            return job
        self._cancel.add(job_id)
        task = self._tasks.get(job_id)
        if task is None:  # not running in this process: mark it so it never resumes
            self._set(job_id, status="cancelled")
        return self.get(job_id)

    def resume_unfinished(self) -> list[str]:
        with self.rt.db.session() as s:
            from sqlalchemy import select

            ids = list(s.scalars(select(Job.id).where(Job.status.in_(("queued", "running")))))
        for job_id in ids:
            log.info("resuming re-index job %s", job_id)
            self._launch(job_id)
        return ids

    def running(self) -> bool:
        return bool(self._tasks)

    async def wait(self, job_id: str, timeout: float = 120.0) -> dict:
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        return self.get(job_id)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # ---- running --------------------------------------------------------------------------
    def _set(self, job_id: str, **values) -> None:
        with self.rt.db.session() as s:
            job = s.get(Job, job_id)
            for k, v in values.items():
                setattr(job, k, json.dumps(v) if k in ("progress", "cursor") else v)
            job.updated_at = now_ms()
            s.commit()

    def _launch(self, job_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(job_id, None))

    def _chunks(self, channel_ids: list[str] | None) -> int:
        from sqlalchemy import func, select

        with self.rt.db.session() as s:
            q = select(func.coalesce(func.sum(Channel.chunk_count), 0))
            if channel_ids is not None:
                q = q.where(Channel.id.in_(channel_ids))
            return int(s.scalar(q) or 0)

    async def _run(self, job_id: str) -> None:
        with self.rt.db.session() as s:
            job = s.get(Job, job_id)
            params, cursor = json.loads(job.params), json.loads(job.cursor or "{}")
        mm = self.client()
        mirror = Mirror(self.rt.db, on_dirty=self.worker.poke)
        last = [0.0]

        def on_progress(p: SyncProgress, cur: dict) -> None:
            if time.monotonic() - last[0] < 0.5 and p.phase != "done":
                return
            last[0] = time.monotonic()
            self._set(job_id, progress=p.as_dict(), cursor=cur)

        syncer = Syncer(mm, mirror, on_progress=on_progress,
                        cancelled=lambda: job_id in self._cancel)
        self._set(job_id, status="running")
        try:
            me = await mm.login()
            mirror.bot_user_id, mirror.bot_username = me["id"], me.get("username")
            progress = await syncer.run(params["scope"], cursor=cursor,
                                        incremental=bool(params.get("incremental")))
            progress.phase = "indexing"
            self._set(job_id, progress=progress.as_dict())
            await asyncio.to_thread(self.worker.poke)
            await asyncio.to_thread(self.worker.run_once)
            progress.chunks = await asyncio.to_thread(self._chunks, None)
            progress.phase = "done"
            self._set(job_id, status="done", progress=progress.as_dict(),
                      cursor={"after": "\uffff"})
        except (Cancelled, asyncio.CancelledError):
            status = "cancelled" if job_id in self._cancel else "running"  # shutdown: resume later
            self._set(job_id, status=status, progress=syncer.progress.as_dict())
            if status == "running":
                raise
        except (MattermostError, InvalidRequest) as exc:
            self._set(job_id, status="failed", error=str(exc), progress=syncer.progress.as_dict())
        except Exception as exc:  # noqa: BLE001 - a job records its failure, the server goes on
            log.exception("re-index job %s failed", job_id)
            self._set(job_id, status="failed", error=f"{exc.__class__.__name__}: {exc}",
                      progress=syncer.progress.as_dict())
        finally:
            self._cancel.discard(job_id)
            await mm.close()
