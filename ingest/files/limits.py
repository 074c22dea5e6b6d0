"""Bounds on what one attachment may cost: bytes, pages, seconds, and for ZIP containers (``.zip``
and the Office packages ``.docx``/``.pptx``) the compression ratio, the total unpacked size and
how deeply they nest.

Every bound is a setting (``OPENOPS_FILE_*``, see :meth:`Limits.from_settings`). A file over one
raises :class:`LimitExceeded`, an :class:`ExtractionError` that names the setting to raise, so
callers that already skip unreadable files (the bulk loader, live sync) report it and go on.

ZIP sizes are checked from the central directory before anything is inflated. Python's
:mod:`zipfile` never returns more than a member's declared ``file_size`` (it stops there and then
checks the CRC), so a member that lies about its size fails instead of growing past the check.
"""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .common import ExtractionError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from rag.settings import Settings

MIB = 2**20


class LimitExceeded(ExtractionError):
    """A file is over one of the :class:`Limits`; ``setting`` names the variable to raise."""

    def __init__(self, reason: str, *, setting: str, filename: str | None = None,
                 hint: str | None = None):
        self.setting = setting
        super().__init__(
            reason, filename=filename,
            hint=hint or f"The file was skipped; raise {setting} if such files are legitimate")

    def __reduce__(self):  # -- crosses the worker's pipe with its parts intact --
        return _rebuild_limit, (self.reason, self.setting, self.filename, self.hint)


def _rebuild_limit(reason: str, setting: str, filename: str | None, hint: str | None):
    return LimitExceeded(reason, setting=setting, filename=filename, hint=hint)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * MIB
    """Size of the attachment as uploaded (``OPENOPS_FILE_MAX_MB``)."""
    max_pages: int = 2000
    """PDF pages or PowerPoint slides (``OPENOPS_FILE_MAX_PAGES``)."""
    timeout_s: float = 60.0
    """Wall-clock seconds for one attachment, archives included (``OPENOPS_FILE_TIMEOUT_S``);
    0 runs extraction in-process without a deadline."""
    max_ratio: float = 200.0
    """Uncompressed / compressed size of any ZIP member (``OPENOPS_FILE_MAX_RATIO``)."""
    max_unpacked_bytes: int = 500 * MIB
    """Total uncompressed size of one ZIP container (``OPENOPS_FILE_MAX_UNPACKED_MB``)."""
    max_nesting: int = 3
    """ZIP containers inside one another, the attachment itself counted: 3 allows a .docx in a
    .zip in a .zip (``OPENOPS_FILE_MAX_NESTING``)."""

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(max_bytes=int(s.file_max_mb * MIB), max_pages=s.file_max_pages,
                   timeout_s=s.file_timeout_s, max_ratio=s.file_max_ratio,
                   max_unpacked_bytes=int(s.file_max_unpacked_mb * MIB),
                   max_nesting=s.file_max_nesting)

    def without_deadline(self) -> Limits:
        return replace(self, timeout_s=0)


@functools.lru_cache(maxsize=1)
def default_limits() -> Limits:
    """The limits the environment (``OPENOPS_FILE_*``) sets, for callers that pass none."""
    from rag.settings import Settings

    return Limits.from_settings(Settings())


@dataclass(frozen=True)
class Budget:
    """The limits, and how many ZIP containers enclose the file being read."""

    limits: Limits
    depth: int = 0

    def inside(self) -> Budget:
        return Budget(self.limits, self.depth + 1)


def _mib(n: float) -> str:
    return f"{n / MIB:,.1f} MiB" if n >= MIB / 10 else f"{n:,.0f} bytes"


def check_size(name: str, size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise LimitExceeded(
            f"the file is {_mib(size)}, above the limit of {_mib(limits.max_bytes)}",
            setting="OPENOPS_FILE_MAX_MB", filename=name)


def check_pages(name: str, pages: int, limits: Limits, what: str = "pages") -> None:
    if pages > limits.max_pages:
        raise LimitExceeded(
            f"it has {pages:,} {what}, above the limit of {limits.max_pages:,}",
            setting="OPENOPS_FILE_MAX_PAGES", filename=name)


def check_zip(name: str, package: zipfile.ZipFile, budget: Budget) -> None:
    """Nesting, every member's ratio and the total size, from the central directory alone."""
    limits = budget.limits
    level = budget.depth + 1
    if level > limits.max_nesting:
        raise LimitExceeded(
            f"it is a ZIP container nested {level} deep (an archive or Office file inside "
            f"archives), above the limit of {limits.max_nesting}",
            setting="OPENOPS_FILE_MAX_NESTING", filename=name)
    total = 0
    for info in package.infolist():
        total += info.file_size
        if info.file_size > MIB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise LimitExceeded(
                f"member {info.filename!r} expands {ratio:,.0f}x ({_mib(info.compress_size)} to "
                f"{_mib(info.file_size)}), above the compression-ratio limit of "
                f"{limits.max_ratio:,.0f}x: a ZIP bomb or a pathological file",
                setting="OPENOPS_FILE_MAX_RATIO", filename=name)
    if total > limits.max_unpacked_bytes:
        raise LimitExceeded(
            f"it unpacks to {_mib(total)}, above the limit of {_mib(limits.max_unpacked_bytes)}",
            setting="OPENOPS_FILE_MAX_UNPACKED_MB", filename=name)
