"""The index worker: re-indexes the channels the mirror marked dirty, in a background thread."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("openops.mattermost.worker")


class IndexWorker:
    """Re-indexes dirty channels in a background thread, soon after each change (debounced so
    a burst of events costs one pass). One pass at a time: the indexer is the only writer."""

    def __init__(self, indexer, *, debounce_s: float = 0.15):
        self.indexer = indexer
        self.debounce_s = debounce_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self.lock = threading.Lock()  # held while indexing; a re-index job takes it too
        self._thread: threading.Thread | None = None
        self.passes = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="openops-index", daemon=True)
            self._thread.start()

    def poke(self) -> None:
        self._idle.clear()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(30)
            self._thread = None

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once every change poked so far is indexed (tests, and a job's last step)."""
        return self._idle.wait(timeout)

    def run_once(self) -> None:
        with self.lock:
            while True:
                dirty = self.indexer.dirty_channels()
                if not dirty:
                    return
                self.indexer.run(dirty)
                self.passes += 1
                # the indexer leaves a channel dirty when it changed meanwhile: go again,
                # unless nothing it tried could be cleared (an index error is logged instead)
                if set(self.indexer.dirty_channels()) >= set(dirty):
                    return

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            time.sleep(self.debounce_s)
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - keep serving; the channel stays dirty
                log.exception("index pass failed; dirty channels are retried on the next change")
            if not self._wake.is_set():
                self._idle.set()
