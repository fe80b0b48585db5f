"""Text as feeds give it, made safe to store and readable to show.

Stored titles and abstracts are plain text: HTML is sanitised away with nh3
(scripts and styles dropped with their content) and whitespace collapsed. LaTeX
stays raw in ``title``/``abstract`` and is converted to Unicode once per paper
for display (``$\\alpha$-decay`` → ``\u03b1-decay``), falling back to the raw text when
the converter cannot make sense of it. Exponents and indices are shown in Unicode's
super- and subscript characters when every character has one (``$10^{-3}$`` → 10⁻³,
``$x_i$`` → xᵢ, and in running text ``10^4 GPU hours`` → 10⁴ GPU hours).
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

# Unicode has super- and subscript forms for digits, signs and most letters; an exponent
# or index is shown in them only when every character of it has one, else as it was.
_SUPERSCRIPTS = dict(
    zip(
        "0123456789+-−=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVWαβγδεθφχ′'",  # noqa: RUF001
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂᵅᵝᵞᵟᵋᶿᵠᵡ′′",  # noqa: RUF001
        strict=True,
    )
)
_SUBSCRIPTS = dict(
    zip(
        "0123456789+-−=()aehijklmnoprstuvxβγρφχ",  # noqa: RUF001
        "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ",
        strict=True,
    )
)
# In maths, as TeX reads them: ``^{…}``, ``^\alpha``, or one character.
_MATH_SCRIPT = re.compile(r"([\^_])(?:\{([^{}]*)\}|(\\[a-zA-Z]+)|([^\s\\{}$^_]))")
# In running text (Hugging Face summaries: "10^4 GPU hours", "224^2", "10^{19}"): an
# exponent after a word or number. Never subscripts: "_" there is a file or field name.
_TEXT_SUPERSCRIPT = re.compile(
    r"(?<=[0-9A-Za-z)\]])\^(?:\{([^{}$]*)\}|([-+\u2212]?[0-9]+|[a-z](?![a-z])))"
)


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


def _scripted(content: str, table: dict[str, str]) -> str | None:
    """``content`` in super- or subscript characters; None when one has no such form."""
    if "\\" in content:
        content = _convert_span(content)
    shown = "".join(table.get(char, "") for char in content)
    return shown if content and len(shown) == len(content) else None


def _math_script(match: re.Match[str]) -> str:
    table = _SUPERSCRIPTS if match.group(1) == "^" else _SUBSCRIPTS
    content = match.group(2) if match.group(2) is not None else match.group(3) or match.group(4)
    shown = _scripted(content.strip(), table)
    return match.group(0) if shown is None else shown


def _text_superscript(match: re.Match[str]) -> str:
    content = match.group(1) if match.group(1) is not None else match.group(2)
    shown = _scripted(content.strip(), _SUPERSCRIPTS)
    return match.group(0) if shown is None else shown


@lru_cache(maxsize=100_000)
def _convert_span(span: str) -> str:
    if ("^" in span or "_" in span) and span.startswith(("$", "\\(")):
        span = _MATH_SCRIPT.sub(_math_script, span)
    try:
        converted = _converter.latex_to_text(span)
    except Exception:  # pylatexenc raises bare IndexError/KeyError on odd input
        return span
    return converted if converted.strip() or not span.strip() else span


def latex_to_unicode(text: str) -> str:
    """``text`` with its LaTeX spans converted to Unicode; unchanged when it has none."""
    # Substring tests are several times faster than a regex on short strings.
    if "\\" not in text and "$" not in text:
        return _TEXT_SUPERSCRIPT.sub(_text_superscript, text) if "^" in text else text
    if "^" not in text:
        return normalise_space(_LATEX_SPAN.sub(lambda m: _convert_span(m.group(0)), text))
    # Exponents in running text, between the LaTeX spans: a span's converted text has
    # lost the braces that said where an exponent ends ("2^{x y}" reads "2^x y").
    pieces: list[str] = []
    end = 0
    for match in _LATEX_SPAN.finditer(text):
        pieces.append(_TEXT_SUPERSCRIPT.sub(_text_superscript, text[end : match.start()]))
        pieces.append(_convert_span(match.group(0)))
        end = match.end()
    pieces.append(_TEXT_SUPERSCRIPT.sub(_text_superscript, text[end:]))
    return normalise_space("".join(pieces))
