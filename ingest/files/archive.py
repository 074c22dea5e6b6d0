"""ZIP archives (.zip): the text of every supported member, each under a line naming it.

Members are read by the same readers as attachments, inside the same budget: the archive's
central directory is checked first (nesting, every member's ratio, the total unpacked size), and a
member that is itself a ZIP container (a .zip, .docx or .pptx) counts one level deeper. A member
over a limit rejects the whole archive (it is a bomb, not a document); a member that is merely
unreadable or of an unsupported type is left out and the rest is kept.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile

from .common import ZIP_MAGIC, Extracted, ExtractionError, short
from .limits import Budget, LimitExceeded, check_zip

logger = logging.getLogger(__name__)


def read_zip(name: str, data: bytes, budget: Budget) -> Extracted:
    from . import SUPPORTED_EXTENSIONS, extract_here

    if not data.startswith(ZIP_MAGIC):
        raise ExtractionError("not a valid ZIP archive", filename=name,
                              hint="Check the upload completed, or re-create the archive")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ExtractionError(f"the ZIP archive is corrupt or truncated ({short(exc)})",
                              filename=name, hint="Upload it again") from exc
    check_zip(name, archive, budget)
    inner = budget.inside()
    parts: list[str] = []
    for info in infos:
        ext = os.path.splitext(info.filename)[1].lower()
        if info.is_dir() or ext not in SUPPORTED_EXTENSIONS or info.flag_bits & 0x1:
            continue  # -- folders, other types, encrypted members --
        try:
            member = extract_here(info.filename, archive.read(info), inner)
        except LimitExceeded as exc:
            raise LimitExceeded(f"{info.filename}: {exc.reason}", setting=exc.setting,
                                filename=name, hint=exc.hint) from exc
        except (ExtractionError, zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            logger.debug("leaving out %s of %s: %s", info.filename, name, exc)
            continue
        parts.append(f"{info.filename}:\n\n{member.text}")
    return Extracted(text="\n\n".join(parts), kind="file", title=None)
