"""Feed text made plain and readable."""

from __future__ import annotations

from digest.papers.text import latex_to_unicode, plain_text


def test_html_paragraphs_keep_their_words_apart() -> None:
    assert plain_text("<p>One.</p><p>Two.</p>", is_html=True) == "One. Two."
    assert plain_text("line<br>break", is_html=True) == "line break"


def test_scripts_and_escaped_markup_never_survive() -> None:
    assert plain_text("Hi <script>alert(1)</script>there") == "Hi there"
    assert plain_text(
        "&lt;b&gt;bold&lt;/b&gt; &amp;amp;amp;lt;i&amp;amp;amp;gt;x", is_html=True
    ) == ("bold x")


def test_maths_with_angle_brackets_is_not_markup() -> None:
    assert plain_text("for $x<y$ and a < b") == "for $x<y$ and a < b"


def test_latex_becomes_readable_and_plain_text_is_untouched() -> None:
    assert latex_to_unicode(r"R\'emy and Przemys{\l}aw") == "Rémy and Przemysław"
    assert latex_to_unicode(r"an $O(n^2)$ bound") == "an O(n^2) bound"
    assert latex_to_unicode("no LaTeX here") == "no LaTeX here"
