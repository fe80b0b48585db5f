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
    assert latex_to_unicode(r"an $O(n^2)$ bound") == "an O(n²) bound"
    assert latex_to_unicode("no LaTeX here") == "no LaTeX here"


def test_exponents_and_indices_in_maths_are_shown_raised_and_lowered() -> None:
    assert latex_to_unicode(r"$10^{-16}\, \rm{s^{-1}}$ rates") == "10⁻¹⁶ s⁻¹ rates"
    assert latex_to_unicode(r"$2^{N+1}-1$ nodes") == "2ᴺ⁺¹-1 nodes"
    assert latex_to_unicode(r"CH$_4$ and $\omega_{0}$, $f_\beta$, $x^\prime$") == (
        "CH₄ and ω₀, fᵦ, x′"
    )
    assert latex_to_unicode(r"$\mathbb{Z}_s^m$ with $\alpha$") == "ℤₛᵐ with α"


def test_exponents_in_running_text_are_raised() -> None:
    # As Hugging Face summaries write them, without dollars.
    assert latex_to_unicode("costs 10^4 GPU hours (> 10^{19} nets)") == (
        "costs 10⁴ GPU hours (> 10¹⁹ nets)"
    )
    assert latex_to_unicode("SRe^2L, M^2-Encoders, g^nConv at 224^2") == (
        "SRe²L, M²-Encoders, gⁿConv at 224²"
    )
    assert latex_to_unicode(r"$\alpha$ at 10^6 steps") == "α at 10⁶ steps"


def test_a_script_without_a_unicode_form_is_left_as_written() -> None:
    # No superscript q, no subscript A, no raised infinity: half-raised would misread.
    assert latex_to_unicode(r"$2^{q+1}$") == "2^q+1"
    assert latex_to_unicode(r"$U(1)_A$") == "U(1)_A"
    assert latex_to_unicode(r"$L^{\infty}$") == "L^∞"
    # Underscores in running text are names, and faces are not exponents.
    assert latex_to_unicode("see config_2 and run_x ^_^") == "see config_2 and run_x ^_^"
