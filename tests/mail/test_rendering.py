from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, UndefinedError

from config.settings import Settings
from digest.delivery.compose import render_paper
from digest.mail.rendering import (
    cut_at_word,
    inline_css,
    make_environment,
    premailer_runs,
    render_email,
    style_block_classes,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
EMAIL_TYPES = sorted(
    p.name for p in (TEMPLATES / "email").iterdir() if p.is_dir() and not p.name.startswith("_")
)


PICK: dict[str, Any] = {
    "title": "Kinetic Typography Diffusion Model",
    "url": "https://arxiv.org/abs/2407.10476",
    "discuss_url": "",
    "summary": "This paper introduces a method for realistic kinetic typography.",
    "published": "15 Jul 2024",
    "author_count": 4,
    "reason": "matches: diffusion · 1 upvote",
    "more_url": "https://digest.example.org/feedback/TOKEN?kind=more",
    "fewer_url": "https://digest.example.org/feedback/TOKEN?kind=fewer",
}
# The digest's paper blocks are rendered apart (email/digest/paper.*), then placed.
BLOCKS = make_environment(TEMPLATES)


def digest_context(
    environment: Environment = BLOCKS, pick: dict[str, Any] = PICK, **overrides: object
) -> dict[str, object]:
    context: dict[str, object] = {
        "site_name": "digest",
        "email": "reader@example.org",
        "interests": "diffusion",
        "frequency_label": "daily",
        "edition_label": "Saturday 21 November 2026",
        "edition_short_label": "21 Nov",
        "unsubscribe_url": "https://digest.example.org/unsubscribe/TOKEN",
        "preferences_url": "https://digest.example.org/preferences/TOKEN",
        "view_url": "https://digest.example.org/digests/TOKEN",
        "paper_count": 1,
        "first_title": pick["title"],
        "papers": [render_paper(environment, pick, 1)],
        # The edition's trending section (compose's tests render one).
        "trending": [],
        "trending_heading": "Trending today",
    }
    context.update(overrides)
    return context


def notice_context(**overrides: object) -> dict[str, object]:
    context: dict[str, object] = {
        "site_name": "digest",
        "email": "reader@example.org",
        "new_email": "new@example.org",
        "hours": 48,
        "frequency_label": "daily",
        "confirm_url": "https://digest.example.org/confirm/TOKEN",
        "preferences_url": "https://digest.example.org/preferences/TOKEN",
        "view_url": "https://digest.example.org/digests/TOKEN",
        "paused": False,
    }
    context.update(overrides)
    return context


CONTEXTS: dict[str, Callable[[], dict[str, object]]] = {
    "digest": digest_context,
    "confirm": notice_context,
    "already_subscribed": notice_context,
    "confirm_email_change": notice_context,
    "new_links": notice_context,
    "address_in_use": notice_context,
}


def test_every_email_type_has_a_context_in_this_test() -> None:
    assert set(EMAIL_TYPES) == set(CONTEXTS)


@pytest.mark.parametrize("name", EMAIL_TYPES)
def test_every_email_type_renders_subject_text_and_inlined_html(name: str) -> None:
    rendered = render_email(make_environment(TEMPLATES), name, CONTEXTS[name]())
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.text.strip()
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert "TOKEN" in rendered.text and "TOKEN" in rendered.html
    # Styles sit on the elements, where email clients read them; a class stays only
    # where the layout's media queries (dark mode, small screens) still use it.
    assert 'style="color:#1d4ed8; text-decoration:none"' in rendered.html
    assert 'class="paper-link"' not in rendered.html
    assert 'class="container"' in rendered.html
    assert "prefers-color-scheme: dark" in rendered.html


FITS = "A title of the length that fills a subject line up to its last charact"
assert len(FITS) == 70


@pytest.mark.parametrize(
    ("title", "paper_count", "edition", "subject"),
    [
        (
            "Diffusion transformers at scale",
            7,
            "1 Dec",
            "Diffusion transformers at scale + 6 more · 1 Dec",
        ),
        ("Diffusion transformers at scale", 1, "1 Dec", "Diffusion transformers at scale · 1 Dec"),
        (
            "Diffusion transformers at scale",
            5,
            "week of 30 Nov",
            "Diffusion transformers at scale + 4 more · week of 30 Nov",
        ),
        # Cut after a whole word, the comma before the cut left out.
        (
            "Scaling laws for diffusion transformers, with evidence from forty thousand "
            "training runs across modalities",
            12,
            "week of 30 Nov",
            "Scaling laws for diffusion transformers, with… + 11 more · week of 30 Nov",
        ),
        # 70 characters and " · 1 Dec" make 78: whole. One more, and its last word goes.
        (FITS, 1, "1 Dec", f"{FITS} · 1 Dec"),
        (FITS + "s", 1, "1 Dec", f"{FITS.rsplit(' ', 1)[0]}… · 1 Dec"),
    ],
)
def test_the_digest_subject_names_the_top_paper_how_many_more_and_the_day(
    title: str, paper_count: int, edition: str, subject: str
) -> None:
    context = digest_context(
        first_title=title, paper_count=paper_count, edition_short_label=edition
    )
    rendered = render_email(make_environment(TEMPLATES), "digest", context).subject
    assert rendered == subject
    assert len(rendered) <= 78


def test_a_cut_ends_after_a_whole_word_without_dangling_punctuation() -> None:
    assert cut_at_word("Scaling laws: a study", 14) == "Scaling laws…"
    assert cut_at_word("One two three four", 14) == "One two three…"
    assert cut_at_word("One two three four", 13) == "One two…"
    assert cut_at_word("One  two", 7) == "One two"
    # A word longer than the room is cut itself rather than dropped.
    assert cut_at_word("Supercalifragilistic", 6) == "Super…"


def test_css_is_inlined_once_per_template_not_once_per_reader() -> None:
    environment = make_environment(TEMPLATES)
    for n in range(50):
        context = digest_context(environment, email=f"reader{n}@example.org")
        render_email(environment, "digest", context)
    # paper.html, body.html and the base layout it extends; the .txt templates are not HTML.
    assert premailer_runs(environment) == 3


def test_paper_text_is_escaped_in_html_and_left_alone_in_text() -> None:
    hostile = "<script>alert(1)</script> & <b>bold</b>"
    context = digest_context(pick={**PICK, "title": hostile})
    rendered = render_email(make_environment(TEMPLATES), "digest", context)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in rendered.html
    assert hostile in rendered.text


def test_a_missing_variable_is_an_error_not_an_empty_string() -> None:
    context = digest_context()
    del context["unsubscribe_url"]
    with pytest.raises(UndefinedError):
        render_email(make_environment(TEMPLATES), "digest", context)


def test_inlining_keeps_jinja_syntax_and_fragments_intact() -> None:
    source = (
        '<p class="x">{{ name }}</p>'
        '{% for i in items %}<a href="{{ i.url }}">{{ i }}</a>{% endfor %}'
    )
    assert inline_css(source, ".x { color: red; }") == (
        '<p class="x" style="color:red">{{ name }}</p>'
        '{% for i in items %}<a href="{{ i.url }}">{{ i }}</a>{% endfor %}'
    )


def test_inlining_keeps_only_the_classes_a_style_block_names() -> None:
    source = '<p class="x y">{{ a }}</p><a class="y" href="#">b</a>'
    assert style_block_classes("<style>@media (x) { .x, .z p { color: red } }</style>") == {
        "x",
        "z",
    }
    assert inline_css(source, ".x { color: red; } .y { margin: 0; }", frozenset({"x"})) == (
        '<p class="x" style="color:red; margin:0">{{ a }}</p><a href="#" style="margin:0">b</a>'
    )


def test_the_configured_templates_directory_is_the_projects(settings: Settings) -> None:
    assert settings.templates_dir == TEMPLATES
