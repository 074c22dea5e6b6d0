"""The output guard: what a model (or a quoted source sentence) says is shown as Markdown in
which nothing renders as a link, an image or HTML except the permalinks issued for this answer,
and nothing pings a whole channel.

The text is parsed the way Mattermost renders it, as CommonMark with GFM tables, strikethrough
and autolinking of bare URLs (markdown-it-py with linkify-it-py), and written back as Markdown
from the token stream: text, emphasis, lists, code, tables, headings, block quotes and
citations like ``[1]`` are kept; links to anything but an allowed permalink keep their text and
lose their address ("(link removed)"), images become their alt text, raw HTML is dropped (an
HTML block keeps its text), reference definitions are shown as inert text, bare domains and
e-mail addresses are written so no autolinker sees them (``config\\.py``), and ``@channel``,
``@all`` and ``@here`` get a zero-width space after the ``@`` (Mattermost's mention parser then
sees two words, neither of them a mention). Text brackets are escaped, except citations whose
next character cannot make them a link. The result is parsed again and checked; if anything
unsafe is left (a combination the renderer did not foresee), the whole text is written as
escaped plain text instead.

``guard_markdown`` guards a whole text; ``StreamGuard`` guards a stream, holding back only an
unfinished construct (an open bracket, link destination, tag, code span or code fence, a word
that may still become a URL), so that nothing it has emitted can later turn into a link."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

__all__ = ["StreamGuard", "guard_markdown", "unsafe_parts", "make_parser"]

REMOVED_LINK = "(link removed)"
REMOVED_IMAGE = "(image removed)"
ZWSP = "\u200b"
BROADCAST = re.compile(r"@(?=(?:channel|all|here)\b)", re.I)
# what an autolinker other than linkify-it may see: "www." anywhere (Mattermost links those
# hosts on every TLD, even inside a word), "http(s)://" and "ftp://" anywhere, any scheme
# followed by "/", the script-ish schemes, and their full-width or ideographic-dot spellings
# (checked on the NFKC form)
URLISH = re.compile(r"(?i)(?:www\d{0,3}\.|(?:https?|ftp)://|\b[a-z][a-z0-9+.\-]{0,31}:/{1,3}(?=\S)|"
                    r"(?<![\w/])//(?=[\w-]+\.)|\b(?:javascript|vbscript|data|file|livescript):)")
CITATION = re.compile(r"\[\d{1,3}\]")
# characters escaped in plain text written by the guard itself (never "@": "\@channel" would
# split into a mention); "." so that no autolinker sees a host
HARD_ESCAPE = re.compile(r"([\\`*_{}\[\]<>()#+\-!|~&=.:])")
_CITE_MARK = "\x00C{}\x00"
_CITE_RE = re.compile("\x00C(\\d{1,3})\x00")
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": ".", "\u2024": ".", "\ufe52": "."})


def make_parser() -> MarkdownIt:
    """CommonMark + GFM tables, strikethrough and linkify (bare URLs, ``www.``, e-mail),
    with escapes and entities kept as their own tokens (so they are written back as typed)."""
    md = MarkdownIt("commonmark", {"linkify": True}).enable(["linkify", "table", "strikethrough"])
    md.disable("text_join")
    return md


MD = make_parser()


def _linkifies(text: str) -> bool:
    """Whether linkify-it finds a link in ``text`` (fails closed without it)."""
    lk = MD.linkify
    return True if lk is None else bool(lk.test(text))


def _looks_like_url(text: str) -> bool:
    return bool(URLISH.search(unicodedata.normalize("NFKC", text).translate(_DOTS)))


def defang_mentions(text: str) -> str:
    """No ``@channel``/``@all``/``@here``: a zero-width space after the ``@`` (Mattermost's
    mention parser splits words there), so nothing the assistant shows pages a channel."""
    return BROADCAST.sub("@" + ZWSP, text)


def _hard(text: str) -> str:
    """Plain text that no Markdown renderer turns into anything: URL-like words removed,
    mentions broken, punctuation escaped, no indentation."""
    words = re.split(r"(\s+)", text)
    out = []
    for w in words:
        if w and not w.isspace() and (_looks_like_url(w) or _linkifies(w)):
            w = REMOVED_LINK
            out.append(w)
            continue
        out.append(HARD_ESCAPE.sub(r"\\\1", defang_mentions(w)).replace("\\<", "&lt;"))
    return "".join(out)


def _hard_document(text: str) -> str:
    paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n\n".join("\n".join(_hard(line.strip()) for line in p.splitlines() if line.strip())
                       for p in paras)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _html_text(html: str) -> str:
    p = _Text()
    p.feed(html)
    p.close()
    return "".join(p.parts)


def _code_delim(content: str) -> str:
    runs = {len(m) for m in re.findall(r"`+", content)}
    n = 1
    while n in runs:
        n += 1
    return "`" * n


class _Renderer:
    def __init__(self, allowed: dict[str, str]):
        self.allowed = allowed  # normalised href -> the permalink as issued

    # ---- inline ----------------------------------------------------------------------------
    def inline(self, tokens: list[Token], table: bool = False) -> str:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            t = tokens[i]
            if t.type in ("text", "text_special"):
                j = i
                while j < len(tokens) and tokens[j].type in ("text", "text_special"):
                    j += 1
                out.append(self.run(tokens[i:j], table))
                i = j
                continue
            if t.type == "link_open":
                j = i + 1
                while tokens[j].type != "link_close":
                    j += 1
                out.append(self.link(t, tokens[i + 1:j], table, out))
                i = j + 1
                continue
            out.append(self.simple(t, table, out))
            i += 1
        return "".join(out)

    def simple(self, t: Token, table: bool, out: list[str]) -> str:
        if t.type == "softbreak":
            return " " if table else "\n"
        if t.type == "hardbreak":
            return " " if table else "\\\n"
        if t.type == "code_inline":
            content = defang_mentions(t.content)
            if table:
                content = content.replace("|", "\\|")
            d = _code_delim(content)
            pad = " " if (content.startswith("`") or content.endswith("`") or (
                content.startswith(" ") and content.endswith(" ") and content.strip())) else ""
            return f"{d}{pad}{content}{pad}{d}"
        if t.type in ("em_open", "em_close", "strong_open", "strong_close", "s_open", "s_close"):
            return t.markup
        if t.type == "image":
            alt = self.inline(t.children or [], table)
            return self._spaced(out, f"{alt} {REMOVED_IMAGE}" if alt.strip() else REMOVED_IMAGE)
        if t.type == "html_inline":
            return ""
        return _hard(t.content)

    @staticmethod
    def _spaced(out: list[str], marker: str) -> str:
        prev = "".join(out[-2:])
        return marker if not prev or prev[-1].isspace() else " " + marker

    def run(self, tokens: list[Token], table: bool) -> str:
        decoded = "".join(t.content for t in tokens)
        if _looks_like_url(decoded):  # written from the decoded text, URL-like words removed
            words = []
            for w in re.split(r"(\s+)", decoded):
                if w and not w.isspace() and _looks_like_url(w):
                    words.append(REMOVED_LINK)
                else:
                    w = self.text(w.replace("&", "&amp;"), table)
                    words.append(w.replace(".", "\\.") if _linkifies(w) else w)
            return "".join(words)
        parts = []
        for t in tokens:
            if t.type == "text_special":  # an escape or an entity, written as typed
                parts.append(t.markup if t.markup else _escape_text(t.content, table))
            else:
                parts.append(self.text(t.content, table))
        return "".join(parts)

    @staticmethod
    def text(s: str, table: bool) -> str:
        s = defang_mentions(s)
        pieces = []
        last = 0
        for m in CITATION.finditer(s):
            pieces.append(_escape_text(s[last:m.start()], table))
            pieces.append(_CITE_MARK.format(m.group(0)[1:-1]))
            last = m.end()
        pieces.append(_escape_text(s[last:], table))
        return "".join(pieces)

    def link(self, t: Token, children: list[Token], table: bool, out: list[str]) -> str:
        href = t.attrs.get("href", "")
        auto = t.markup in ("autolink", "linkify")
        issued = self.allowed.get(str(href))
        if issued is not None:
            if auto:
                return f"<{issued}>"
            return f"[{self.inline(children, table)}]({issued})"
        if auto:
            label = "".join(c.content for c in children)
            if t.markup == "linkify" and _fuzzy_host(label):
                # a bare domain or e-mail address: the same text, with no dot an autolinker sees
                return self.text(label, table).replace(".", "\\.")
            return self._spaced(out, REMOVED_LINK)
        label = self.inline(children, table)
        return label + (" " if label and not label[-1].isspace() else "") + REMOVED_LINK \
            if label.strip() else self._spaced(out, REMOVED_LINK)

    # ---- blocks ----------------------------------------------------------------------------
    def blocks(self, nodes: list[SyntaxTreeNode], tight: bool = False) -> str:
        sep = "\n" if tight else "\n\n"
        return sep.join(x for x in (self.block(n) for n in nodes) if x != "")

    def block(self, n: SyntaxTreeNode) -> str:
        k = n.type
        if k == "paragraph":
            return _still_paragraph(_trim(self.inline(_inline_tokens(n))))
        if k == "heading":
            text = _trim(self.inline(_inline_tokens(n)))
            if n.markup.startswith("#"):
                return f"{n.markup} {text.replace(chr(10), ' ')}".rstrip()
            return f"{_still_paragraph(text)}\n{'===' if n.tag == 'h1' else '---'}"
        if k == "blockquote":
            inner = self.blocks(n.children)
            return "\n".join(f"> {x}" if x else ">" for x in inner.split("\n"))
        if k in ("bullet_list", "ordered_list"):
            return self.list_(n)
        if k in ("fence", "code_block"):
            content = defang_mentions(n.content)
            fence = "`" * max(3, max((len(r) for r in re.findall(r"`+", content)), default=0) + 1)
            info = n.info.split()[0] if k == "fence" and n.info.strip() else ""
            info = info if re.fullmatch(r"[\w+#.\-]{1,30}", info) else ""
            return f"{fence}{info}\n{content.rstrip(chr(10))}\n{fence}" if content.strip("\n") \
                else f"{fence}{info}\n{fence}"
        if k == "hr":
            return "***"
        if k == "html_block":
            return _hard_document(_html_text(n.content))
        if k == "table":
            return self.table(n)
        return _hard_document(n.content or "")

    def list_(self, n: SyntaxTreeNode) -> str:
        items = []
        tight = all(p.hidden for item in n.children for p in item.children
                    if p.type == "paragraph")
        for item in n.children:
            marker = (f"{item.info}{item.markup}" if n.type == "ordered_list" else item.markup)
            body = self.blocks(item.children, tight)
            lines = body.split("\n") if body else [""]
            pad = " " * (len(marker) + 1)
            first = f"{marker} {lines[0]}".rstrip()
            rest = [f"{pad}{x}" if x else "" for x in lines[1:]]
            items.append("\n".join([first, *rest]))
        return ("\n" if tight else "\n\n").join(items)

    def table(self, n: SyntaxTreeNode) -> str:
        rows: list[list[str]] = []
        aligns: list[str] = []
        for section in n.children:
            for tr in section.children:
                cells = []
                for cell in tr.children:
                    cells.append(self.inline(_inline_tokens(cell), table=True).strip())
                    if section.type == "thead":
                        style = str(cell.attrs.get("style", ""))
                        aligns.append(":---:" if "center" in style else ":---" if "left" in style
                                      else "---:" if "right" in style else "---")
                rows.append(cells)
        width = len(aligns)
        lines = []
        for i, cells in enumerate(rows):
            cells = (cells + [""] * width)[:width]
            lines.append("| " + " | ".join(cells) + " |")
            if i == 0:
                lines.append("| " + " | ".join(aligns) + " |")
        return "\n".join(lines)


def _still_paragraph(text: str) -> str:
    """A paragraph whose removed parts (an HTML tag, a link) left a line that would now start
    a list, quote, heading or table: its line starts are escaped so it stays one paragraph."""
    toks = MD.parse(text)
    if [t.type for t in toks] == ["paragraph_open", "inline", "paragraph_close"]:
        return text
    def escape(line: str) -> str:
        line = line.lstrip(" \t")
        if m := re.match(r"\d+(?=[.)])", line):
            return line[:m.end()] + "\\" + line[m.end():]
        return "\\" + line if line[:1] and line[0] in "#>-+*=|~`_:" else line

    return "\n".join(escape(x) for x in text.split("\n"))


def _trim(text: str) -> str:
    """No spaces around a line of a paragraph (the parser drops them; a hard break is written
    as a backslash)."""
    return re.sub(r"^[ \t]+|[ \t]+$", "", text, flags=re.M).strip("\n")


def _inline_tokens(node: SyntaxTreeNode) -> list[Token]:
    """The inline tokens of a paragraph, heading or table cell (flat, as markdown-it made them)."""
    if not node.children:
        return []
    tok = node.children[0].token
    return list(tok.children or []) if tok is not None else []


def _escape_text(s: str, table: bool) -> str:
    # "<" as an entity: never a tag, and no "<img" left in the text for a filter to trip on
    s = re.sub(r"([\\`\[\]])", r"\\\1", s).replace("<", "&lt;")
    return s.replace("|", "\\|") if table else s


def _fuzzy_host(label: str) -> bool:
    """A linkify-it match written without scheme, ``//``, ``www.``, path, query or port."""
    return not re.search(r"[/?#:]|^www\d{0,3}\.", label, re.I)


def _resolve_citations(text: str, open_end: bool) -> str:
    """A citation stays ``[n]`` unless what follows it could make it a link (``(`` or ``:``),
    or, when more text may follow (a stream), it ends the text."""
    out = []
    pos = 0
    for m in _CITE_RE.finditer(text):
        out.append(text[pos:m.start()])
        rest = text[m.end():]
        nxt = _CITE_RE.sub("[", rest[:8])[:1]
        raw = f"[{m.group(1)}]"
        if (nxt in ("(", ":")) or (not nxt and open_end):
            raw = f"\\[{m.group(1)}\\]"
        out.append(raw)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _allowed_map(allowed: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for url in allowed:
        if url:
            out[url] = url
            out[MD.normalizeLink(url)] = url
    return out


def _render(text: str, allowed: dict[str, str], open_end: bool) -> str:
    env: dict = {}
    tokens = MD.parse(text, env)
    r = _Renderer(allowed)
    root = SyntaxTreeNode(tokens)
    pieces: list[tuple[int, str]] = []
    for node in root.children:
        out = r.block(node)
        if out != "":
            pieces.append((node.map[0] if node.map else 0, out))
    lines = text.split("\n")
    for ref in (env.get("references") or {}).values():
        start, end = ref.get("map") or (0, 0)
        pieces.append((start, _hard_document("\n".join(lines[start:end]))))
    pieces.sort(key=lambda p: p[0])
    body = "\n\n".join(p for _, p in pieces if p)
    return _resolve_citations(body, open_end)


def unsafe_parts(markdown: str, allowed: Iterable[str] = ()) -> list[str]:
    """What in ``markdown`` would render as something other than inert text, as Mattermost
    renders it: links (other than ``allowed``), images, HTML, reference definitions, URL-like
    text another autolinker may see, channel-wide mentions. Empty when the text is safe."""
    ok = _allowed_map(allowed)
    env: dict = {}
    found: list[str] = []
    tokens = MD.parse(markdown, env)
    if env.get("references"):
        found += [f"definition {k}" for k in env["references"]]

    def walk(toks: list[Token]) -> None:
        run: list[str] = []
        in_link = 0
        for t in toks:
            if t.type in ("text", "text_special") and not in_link:
                run.append(t.content)
                continue
            if run:
                check("".join(run))
                run = []
            if t.type == "link_open":
                in_link += 1
                if str(t.attrs.get("href")) not in ok:
                    found.append(f"link {t.attrs.get('href')}")
            elif t.type == "link_close":
                in_link -= 1
            elif t.type == "image":
                found.append(f"image {t.attrs.get('src')}")
            elif t.type in ("html_inline", "html_block"):
                found.append(f"html {t.content[:40]!r}")
            elif t.type in ("code_inline", "fence", "code_block"):
                if BROADCAST.search(t.content):
                    found.append(f"mention in code {t.content[:40]!r}")
            if t.children:
                walk(t.children)
        if run:
            check("".join(run))

    def check(text: str) -> None:
        if BROADCAST.search(text):
            found.append(f"mention {text[:40]!r}")
        if _looks_like_url(text):
            found.append(f"url-like {text[:40]!r}")

    walk(tokens)
    return found


def guard_markdown(text: str, allowed: Iterable[str] = (), *, open_end: bool = False) -> str:
    """``text`` as Markdown in which only the ``allowed`` permalinks are links (see the module
    docstring). ``open_end``: more text may follow (then a trailing citation is escaped)."""
    if not text:
        return ""
    amap = _allowed_map(allowed)
    try:
        out = _render(text, amap, open_end)
    except Exception:  # noqa: BLE001 - a renderer bug must fail closed, never open
        out = None
    if out is None or unsafe_parts(out, amap):
        out = _hard_document(text)
    return out


# ---- streaming ---------------------------------------------------------------------------------
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$", re.M)


class StreamGuard:
    """Guard a stream of deltas: ``feed(delta) -> str`` returns what may be shown now,
    ``flush() -> str`` the rest at the end. Everything returned, joined, is safe at every
    point (checked by parsing it again) and is, as long as the text allows, exactly
    ``guard_markdown`` of the text so far.

    Text is emitted up to the last point where no construct is open: at whitespace, not right
    after a ``]`` (a ``(`` may follow), not inside an open ``[``, link destination, ``<``,
    code span or code fence, nor inside a line with ``|`` (it may become a table row). What is
    held back is at most ``max_hold`` characters; past that it is emitted as inert text."""

    def __init__(self, allowed: Iterable[str] = (), *, max_hold: int = 2000):
        self.allowed = _allowed_map(allowed)
        self.max_hold = max_hold
        self.raw = ""
        self.out = ""  # what was emitted
        self.done = 0  # how much of raw it accounts for
        self.local = False  # the output no longer follows guard_markdown(raw[base:done])
        self.base = 0  # raw before this is final, its output is out[:base_out]
        self.base_out = 0

    def feed(self, delta: str) -> str:
        self.raw += delta
        p = self._quiet_point()
        # each step re-reads the current block: stepping by a share of its length keeps the
        # whole stream's cost linear in its length (word by word while the block is short)
        if p <= self.done or (p - self.done < (self.done - self.base) // 16
                              and "\n" not in self.raw[self.done:p]):
            return ""
        return self._emit(p, final=False)

    def flush(self) -> str:
        if len(self.raw) <= self.done and not self.raw[self.done:].strip():
            return ""
        return self._emit(len(self.raw), final=True)

    def _quiet_point(self) -> int:
        """The last position after ``done`` where nothing is open (see the class docstring)."""
        start = self.done
        raw = self.raw
        n = len(raw)
        best = start
        i = start
        code = 0  # length of the backtick run that opened a code span
        depth = 0  # open "["
        paren = 0  # open "(" of a link destination
        angle = -1  # where an open "<" started
        fence = ""  # the marker of an open code fence
        html = False  # inside a possible HTML block (until a blank line)
        while i < n:
            c = raw[i]
            if i == 0 or raw[i - 1] == "\n":  # a line start: fences, HTML blocks, tables
                eol = raw.find("\n", i)
                line = raw[i:] if eol < 0 else raw[i:eol]
                m = _FENCE_LINE.match(line)
                if fence:
                    if eol < 0:
                        break
                    if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                            and not m.group(2).strip():
                        fence = ""
                        best = eol + 1 if not (code or depth or paren or html) else best
                    i = eol + 1
                    continue
                if html:
                    if not line.strip():
                        html = False
                    elif eol < 0:
                        break
                    else:
                        i = eol + 1
                        continue
                if eol < 0 and (not line.strip(" ") or line.lstrip(" ")[:1] in "`~<|"):
                    break  # an unfinished line that may open a fence, a tag or a table row
                if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                    if eol < 0:
                        break
                    fence = m.group(1)
                    i = eol + 1
                    continue
                if (line.lstrip(" ").startswith("<") or line.startswith(("\t", "    "))) and not (
                        code or depth or paren):
                    html = True  # an HTML or indented code block: held to its blank line
                    i = eol + 1 if eol >= 0 else n
                    continue
                if "|" in line and (eol < 0 or raw.find("\n", eol + 1) < 0):
                    break  # a row that the next line may make a table
            if c == "\\":
                i += 2
                continue
            if c == "`":
                j = i
                while j < n and raw[j] == "`":
                    j += 1
                run = j - i
                if code == 0:
                    code = run
                elif run == code:
                    code = 0
                i = j
                continue
            if not code:
                if angle >= 0:
                    if c == ">" or i - angle > 500:
                        angle = -1
                elif c == "<":
                    angle = i
                elif paren:
                    paren += (c == "(") - (c == ")")
                elif c == "[":
                    depth += 1
                elif c == "]" and depth:
                    depth -= 1
                    if depth == 0 and i + 1 < n and raw[i + 1] == "(":
                        paren = 1
                        i += 2
                        continue
            i += 1
            if (c.isspace() and not (code or depth or paren or fence or html) and angle < 0
                    and (i == n or not raw[i].isspace())):
                before = raw[start:i].rstrip()
                if re.search(r"\w", before[before.rfind("\n") + 1:]):  # not a bare "- "
                    best = i
        if best <= start and n - start > self.max_hold:
            best = n - self.max_hold // 2
            while best > start + 1 and not raw[best - 1].isspace():
                best -= 1
        return best

    def _emit(self, p: int, final: bool) -> str:
        out = ""
        frozen = self.out[:self.base_out]
        # a citation at the very end may still be followed by "(": it stays escaped for now
        open_end = not final and not self.raw[p - 1:p].isspace()
        if not self.local:
            whole = guard_markdown(self.raw[self.base:p], self.allowed, open_end=open_end)
            expected = ("\n\n" + whole if frozen and whole else whole)
            if expected.startswith(self.out[self.base_out:]):
                out = expected[len(self.out) - self.base_out:]
            else:
                self.local = True
        if self.local:
            piece = self.raw[self.done:p]
            gap = piece[: len(piece) - len(piece.lstrip())]
            prev_gap = self.raw[:self.done][len(self.raw[:self.done].rstrip()):] + gap
            sep = "" if not self.out else ("\n\n" if prev_gap.count("\n") >= 2 else
                                           "\n" if "\n" in prev_gap else " " if prev_gap else "")
            body = guard_markdown(piece.strip(), self.allowed, open_end=open_end)
            out = sep + body if body else ""
            # checked with everything shown before: a piece could close what an earlier one
            # opened (local mode is the rare case; the whole text is parsed again)
            if out and unsafe_parts(self.out + out, self.allowed):
                out = sep + _hard_document(piece.strip())
            if out and unsafe_parts(self.out + out, self.allowed):
                out = ""  # nothing is better than something unsafe
        self.out += out
        self.done = p
        # a blank line followed by a new top-level block: what came before is final, later
        # text is guarded on its own (so each step costs the current block, not the answer)
        if (not final and p >= 2 and self.raw[p - 2:p] == "\n\n" and p < len(self.raw)
                and not re.match(r"[\s\-*+>|]|\d{1,9}[.)]", self.raw[p:p + 10])
                and _closed(self.out)):
            self.base, self.base_out, self.local = p, len(self.out), False
        return out


def _closed(markdown: str) -> bool:
    """Whether nothing in ``markdown`` is left open that would take in a next block."""
    toks = MD.parse(markdown + "\n\nx")
    return ([t.type for t in toks[-3:]] == ["paragraph_open", "inline", "paragraph_close"]
            and toks[-3].level == 0 and toks[-2].content == "x")
