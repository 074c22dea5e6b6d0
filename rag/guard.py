"""The output guard: no images, HTML or links in what a model or a quoted source says,
except the permalinks issued for the answer."""

from __future__ import annotations

import re

_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:https?|ftp|data|javascript):[^)]*\)", re.I)
_HTML = re.compile(r"<\s*/?\s*(img|a|iframe|script|svg)[^>]*>", re.I)
_URL = re.compile(r"\b(?:https?|ftp)://[^\s)>\]]+", re.I)


_DANGLING_TAG = re.compile(r"<[A-Za-z/!?][^\s>]*>?")


def sanitize(text: str, allowed_urls: set[str] | frozenset[str] = frozenset()) -> str:
    """Remove markdown images, HTML tags, links and raw URLs (other than permalinks we issued)."""
    text = _IMAGE.sub("", text)
    text = _HTML.sub("", text)

    def link(m: re.Match) -> str:
        url = _URL.search(m.group(0))
        return m.group(0) if url and url.group(0) in allowed_urls else m.group(1)

    text = _MD_LINK.sub(link, text)
    text = _URL.sub(lambda m: m.group(0) if m.group(0) in allowed_urls else "[link removed]", text)
    # what is left of a broken construct (an image or a tag whose URL is gone) is defused too
    text = _DANGLING_TAG.sub("", text)
    return text.replace("![", "[")


class StreamSanitizer:
    """Sanitise streamed text while holding back as little as possible: text from a possible
    start of an image, link, tag or URL waits until that construct is complete."""

    _OPEN = re.compile(r"!\[|\[|<|\b(?:h|ht|htt|http|https|f|ft|ftp)(?::|$)|\bhttps?:|\bftp:|!$")

    def __init__(self, allowed_urls: set[str] | frozenset[str] = frozenset()):
        self.allowed = allowed_urls
        self.buf = ""

    @staticmethod
    def _complete(tail: str) -> bool:
        if len(tail) > 500:
            return True
        if tail.startswith("<"):
            return ">" in tail
        if tail.startswith(("![", "[")):
            close = tail.find("]")
            if close < 0:
                return False
            rest = tail[close + 1 :]
            if not rest:
                return False
            return not rest.startswith("(") or ")" in rest
        if tail == "!":
            return False
        return bool(re.search(r"[\s)>\]]", tail))  # a URL (or a word) ends at whitespace

    def feed(self, delta: str) -> str:
        self.buf += delta
        out = []
        while True:
            m = self._OPEN.search(self.buf)
            if m is None:
                out.append(self.buf)
                self.buf = ""
                break
            head, tail = self.buf[: m.start()], self.buf[m.start() :]
            if not self._complete(tail):
                out.append(head)
                self.buf = tail
                break
            # complete: emit through the end of the construct, keep scanning the rest
            end = self._end(tail)
            out.append(head + tail[:end])
            self.buf = tail[end:]
            if not self.buf:
                break
        return sanitize("".join(out), self.allowed)

    @staticmethod
    def _end(tail: str) -> int:
        if tail.startswith("<"):
            return tail.index(">") + 1
        if tail.startswith(("![", "[")):
            close = tail.find("]")
            rest = tail[close + 1 :]
            if rest.startswith("(") and ")" in rest:
                return close + 1 + rest.index(")") + 1
            return close + 1
        m = re.search(r"[\s)>\]]", tail)
        return m.start() if m else len(tail)

    def flush(self) -> str:
        out, self.buf = sanitize(self.buf, self.allowed), ""
        return out
