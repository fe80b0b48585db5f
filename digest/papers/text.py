"""Text as feeds give it, made safe to store and readable to show.

Stored titles and abstracts are plain text: HTML is sanitised away with nh3
(scripts and styles dropped with their content) and whitespace collapsed. LaTeX
stays raw in ``title``/``abstract`` and is converted to Unicode once per paper
for display (``$\\alpha$-decay`` → ``\u03b1-decay``), falling back to the raw text when
the converter cannot make sense of it.
"""

from __future__ import annotations

import html
import logging
import re
from functools import lru_cache

import nh3
from pylatexenc.latex2text import LatexNodes2Text

# pylatexenc logs every macro it cannot substitute; a bad abstract is not news.
logging.getLogger("pylatexenc").setLevel(logging.CRITICAL)

_MARKUP = re.compile(r"[<&]")
# A whole tag, raw or escaped once: what makes a "plain text" field suspicious.
# Maths such as ``$x<y$`` or ``a < b`` is not a tag and is left alone.
# Where HTML separates words by layout alone: "<p>One.</p><p>Two.</p>" is "One. Two.".
_BLOCK_TAG = re.compile(r"<(?:/?(?:p|div|li|ul|ol|h[1-6]|blockquote|tr|td|th|table)|br)\b", re.I)
_TAG = re.compile(r"(?:<|&lt;)/?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?/?(?:>|&gt;)")
# The parts of a text that are LaTeX: maths, and macros with their braced arguments
# (``\'e``, ``{\l}``, ``\textbf{x}``). Converting these spans alone, each once (the
# same ``$n$`` recurs across thousands of abstracts), is ~10x faster than feeding
# whole abstracts to the converter.
_LATEX_SPAN = re.compile(
    r"\$\$.+?\$\$"
    r"|\$[^$]+\$"
    r"|\\\(.+?\\\)"
    r"|\{\\[^{}]*\}"
    r"|\\[a-zA-Z]+\*?(?:\{[^{}]*\})*"
    r"|\\[^a-zA-Z\s](?:\{\w?\}|\w)?",
    re.DOTALL,
)
_converter = LatexNodes2Text()


def normalise_space(text: str) -> str:
    # str.split is ~10x faster than a regex and splits on every Unicode space.
    return " ".join(text.split())


def plain_text(text: str, *, is_html: bool = False) -> str:
    """Feed text to plain text, whitespace collapsed.

    ``is_html`` says the field is HTML (RSS descriptions): entities are decoded
    and tags dropped. A field that should be plain text (arXiv titles and
    abstracts, where ``<`` is maths) is sanitised only when it holds something
    tag-like. Feeds escape markup once or twice (``&lt;p&gt;``); cleaning until
    nothing changes means no tag, script or style survives in what is stored.
    """
    if not is_html and (("<" not in text and "&lt;" not in text) or not _TAG.search(text)):
        return normalise_space(text)
    if is_html:
        text = _BLOCK_TAG.sub(r" \g<0>", text)
    for _ in range(4):
        if not _MARKUP.search(text):
            break
        cleaned = html.unescape(nh3.clean(text, tags=set()))
        if cleaned == text:
            break
        text = cleaned
    else:
        # Escaped more times than any real feed does: whatever still looks like
        # a tag goes, rather than be stored for a later reader to unescape.
        text = _TAG.sub("", text)
    return normalise_space(text)


@lru_cache(maxsize=100_000)
def _convert_span(span: str) -> str:
    try:
        converted = _converter.latex_to_text(span)
    except Exception:  # pylatexenc raises bare IndexError/KeyError on odd input
        return span
    return converted if converted.strip() or not span.strip() else span


def latex_to_unicode(text: str) -> str:
    """``text`` with its LaTeX spans converted to Unicode; unchanged when it has none."""
    # Substring tests are several times faster than a regex on short strings.
    if "\\" not in text and "$" not in text:
        return text
    return normalise_space(_LATEX_SPAN.sub(lambda m: _convert_span(m.group(0)), text))
