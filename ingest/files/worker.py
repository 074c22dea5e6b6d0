"""Extraction under a deadline: a long-lived worker process that a runaway parser cannot outlast.

A parser stuck in a pathological file (a PDF whose content stream decodes to millions of
operators, a document that makes a library loop) cannot be interrupted from another thread, so
the formats read by third-party parsers run in one child process (a fresh interpreter: no
threads or locks inherited from the caller). The child imports the parsers once, then serves one file at a
time over a pipe. If a file is not done by ``Limits.timeout_s``, the child is killed, the file is
reported as over the limit, and the next file starts a fresh child. If the child dies (out of
memory, a crash in C code), the file is reported and the next one starts a fresh child too.

Cost, measured on the 2-core development machine: the child is ready as soon as Python has
started (the parsers are imported in the background, ~2.3 s, as the first .docx pays in-process
anyway); after that a small .pdf costs the same as in-process (~3 ms) and a small .docx ~1 ms
more (10.6 vs 9.6 ms: pickling the bytes both ways).
Plain text, CSV and WebVTT are read in-process: our own linear parsers, bounded by the size limit.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from .common import Extracted, ExtractionError
from .limits import Budget, LimitExceeded, Limits

log = logging.getLogger(__name__)

# -- Seconds the child may take to start and import the parsers (not part of any deadline). --
_START_TIMEOUT_S = 300.0


class _Duplex:
    """A reading and a writing :class:`Connection` used as one."""

    def __init__(self, reader: Connection, writer: Connection):
        self.reader, self.writer = reader, writer

    def send(self, obj: Any) -> None:
        self.writer.send(obj)

    def recv(self) -> Any:
        return self.reader.recv()

    def poll(self, timeout: float) -> bool:
        return self.reader.poll(timeout)

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


def main(read_fd: int, write_fd: int) -> None:
    """The child's entry point, on the two pipe ends the parent passed."""
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    _serve(_Duplex(Connection(read_fd, writable=False), Connection(write_fd, readable=False)))


def _exit_with_parent(parent: int) -> None:
    """The parent killed (even with -9) while a parser is busy: stop at once, not minutes later."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _warm_up() -> None:
    try:
        from .offline import prepare_unstructured

        prepare_unstructured()
        import pdfminer.pdfinterp  # noqa: F401 - the imports every first file would pay
        import unstructured.partition.docx  # noqa: F401
        import unstructured.partition.html  # noqa: F401
    except Exception:  # noqa: BLE001 - the file that needs it reports the error
        log.debug("warm-up of the extraction worker failed", exc_info=True)


def _serve(conn: _Duplex) -> None:
    """The child's loop: warm up, say ready, then extract until the pipe closes."""
    from . import extract_here

    # -- Ready at once; the parsers are imported meanwhile, so the first file waits only for
    # -- what is still loading (never more than it would in-process). --
    threading.Thread(target=_warm_up, daemon=True).start()
    conn.send(("ready", None))
    while True:
        try:
            name, data, limits = conn.recv()
        except (EOFError, OSError):  # -- the parent went away (even kill -9): so do we --
            return
        try:
            reply: tuple[str, Any] = ("ok", extract_here(name, data, Budget(limits)))
        except ExtractionError as exc:
            reply = ("error", exc)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, the child lives on
            reply = ("error", ExtractionError(
                f"the extractor failed ({type(exc).__name__}: {str(exc)[:200]})", filename=name))
        conn.send(reply)


class Worker:
    """One child process, one file at a time (callers in several threads wait their turn)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: _Duplex | None = None

    def _start(self) -> _Duplex:
        # -- A fresh interpreter on two pipes (not multiprocessing's spawn, which re-runs the
        # -- caller's main module in the child: scripts without a __main__ guard would break). --
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        code = f"from ingest.files.worker import main; main({to_child_r}, {from_child_w})"
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, close_fds=True,
                                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        conn = _Duplex(Connection(from_child_r, writable=False),
                       Connection(to_child_w, readable=False))
        if not conn.poll(_START_TIMEOUT_S):
            proc.kill()
            conn.close()
            raise ExtractionError("the extraction worker did not start",
                                  hint="Check that the parsers import in this environment")
        try:
            conn.recv()
        except EOFError as exc:
            proc.wait(5)
            conn.close()
            raise ExtractionError(
                f"the extraction worker exited at start (exit code {proc.returncode})",
                hint="Run `python -c 'import ingest.files.worker'` to see the error") from exc
        self._proc, self._conn = proc, conn
        return conn

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def extract(self, name: str, data: bytes, limits: Limits) -> Extracted:
        with self._lock:
            conn = self._conn
            if conn is None or self._proc is None or self._proc.poll() is not None:
                self._stop()
                conn = self._start()
            try:
                conn.send((name, data, limits.without_deadline()))
                done = conn.poll(limits.timeout_s)
            except (BrokenPipeError, EOFError, OSError):
                done = True  # -- the child died: recv below reports it --
            if not done:
                self._stop()
                log.warning("extraction of %s stopped after %s s", name, limits.timeout_s)
                raise LimitExceeded(
                    f"extraction took longer than {limits.timeout_s:g} s and was stopped",
                    setting="OPENOPS_FILE_TIMEOUT_S", filename=name)
            try:
                status, payload = conn.recv()
            except (EOFError, OSError) as exc:
                code = self._proc.wait(5) if self._proc is not None else None
                self._stop()
                raise ExtractionError(
                    f"the extractor died reading it (exit code {code}; out of memory?)",
                    filename=name, hint="The file was skipped") from exc
        if status == "ok":
            return payload
        raise payload

    def close(self) -> None:
        with self._lock:
            self._stop()


_worker = Worker()


def extract_with_deadline(name: str, data: bytes, limits: Limits) -> Extracted:
    return _worker.extract(name, data, limits)
