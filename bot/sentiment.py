"""The mood of a message as one emoji, for ``/openops react``.

VADER (Hutto & Gilbert, 2014) is a lexicon and rule model tuned on social-media text: it reads
negation, intensifiers, capitals, punctuation and emoticons, needs no model download, and runs
in microseconds. Its compound score picks the emoji; a question or a thank-you gets its own."""

from __future__ import annotations

import re
from functools import lru_cache

THANKS = re.compile(r"\b(thanks|thank you|thx|kudos|great job|well done|congrat\w*)\b", re.I)


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def score(text: str) -> float:
    """VADER's compound score in [-1, 1]."""
    return float(_analyzer().polarity_scores(text or "")["compound"])


def emoji_for(text: str) -> str:
    """A Mattermost emoji name for the message's mood."""
    c = score(text)
    if THANKS.search(text or "") and c >= 0:
        return "pray"
    if c >= 0.6:
        return "tada"
    if c >= 0.2:
        return "slightly_smiling_face"
    if c <= -0.6:
        return "rotating_light"
    if c <= -0.2:
        return "disappointed"
    if (text or "").rstrip().endswith("?"):
        return "thinking_face"
    return "eyes"
