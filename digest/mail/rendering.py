"""Email rendering: one Jinja2 environment, CSS inlined once per template.

Email clients ignore ``<style>`` blocks, so styles must sit in ``style=""``
attributes. Running premailer for each of a million readers would cost a parse
of every message; instead the loader inlines the CSS into the *template source*
when Jinja first loads it. Jinja caches the compiled result, so per-reader work
is plain template rendering.

Rules of the road for email templates: style through the class selectors in
``templates/email/_base/style.css`` (a selector cannot see across a template
boundary), and keep media queries in the base layout's own ``<style>`` block.
Once inlined, an element keeps only the classes that block names (the rest are
bytes every paper of every digest would repeat for nothing), so a media query
reaches a paper's elements through a descendant selector (``.container p``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from premailer import Premailer

_JINJA_SYNTAX = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_MARKER = "JINJAMARKER{}X"
_MARKER_RE = re.compile(r"JINJAMARKER(\d+)X")
_DOCUMENT_WRAPPER = re.compile(r"^\s*<html><head>.*?</head><body>(.*)</body></html>\s*$", re.DOTALL)
_STYLE_BLOCK = re.compile(r"<style[^>]*>(.*?)</style>", re.DOTALL | re.IGNORECASE)
_CLASS_SELECTOR = re.compile(r"\.(-?[_a-zA-Z][_a-zA-Z0-9-]*)")
_CLASS_ATTRIBUTE = re.compile(r'\sclass="([^"]*)"')


def style_block_classes(html: str) -> frozenset[str]:
    """The classes the ``<style>`` blocks of ``html`` name."""
    return frozenset(
        name for block in _STYLE_BLOCK.findall(html) for name in _CLASS_SELECTOR.findall(block)
    )


def _prune_classes(html: str, keep: frozenset[str]) -> str:
    def pruned(match: re.Match[str]) -> str:
        names = [name for name in match.group(1).split() if name in keep]
        return f' class="{" ".join(names)}"' if names else ""

    return _CLASS_ATTRIBUTE.sub(pruned, html)


def inline_css(template_source: str, css: str, keep_classes: frozenset[str] | None = None) -> str:
    """Inline ``css`` into an HTML Jinja template, leaving its Jinja syntax intact;
    with ``keep_classes``, class attributes keep only those classes."""
    saved: list[str] = []

    def hide(match: re.Match[str]) -> str:
        saved.append(match.group(0))
        return _MARKER.format(len(saved) - 1)

    hidden = _JINJA_SYNTAX.sub(hide, template_source)
    is_document = "<html" in hidden.lower()
    inlined: str = Premailer(
        hidden,
        css_text=css,
        keep_style_tags=True,
        # The media queries' !important is what lets dark mode and the phone layout
        # win over the inlined styles; premailer strips it by default.
        strip_important=False,
        remove_classes=False,
        disable_validation=True,
        allow_network=False,
        cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=False)
    if not is_document:
        # premailer wraps a fragment in a document; a child template must stay a fragment.
        match = _DOCUMENT_WRAPPER.match(inlined)
        if match:
            inlined = match.group(1)
    if template_source.lstrip().lower().startswith(
        "<!doctype"
    ) and not inlined.lstrip().lower().startswith("<!doctype"):
        inlined = "<!DOCTYPE html>\n" + inlined
    if keep_classes is not None:
        inlined = _prune_classes(inlined, keep_classes)
    return _MARKER_RE.sub(lambda m: saved[int(m.group(1))], inlined)


class CssInliningLoader(BaseLoader):
    """Loads templates from disk; ``email/**.html`` ones come back with CSS inlined."""

    def __init__(self, directory: Path) -> None:
        self._files = FileSystemLoader(str(directory))
        self._css_path = directory / "email" / "_base" / "style.css"
        self._layout_path = directory / "email" / "_base" / "body.html"
        self.inline_count = 0

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self._files.get_source(environment, template)
        if template.startswith("email/") and template.endswith(".html"):
            layout = self._layout_path.read_text(encoding="utf-8")
            source = inline_css(
                source, self._css_path.read_text(encoding="utf-8"), style_block_classes(layout)
            )
            self.inline_count += 1
        return source, filename, uptodate


def make_environment(templates_dir: Path) -> Environment:
    environment = Environment(
        loader=CssInliningLoader(templates_dir),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates change only with a deploy; never re-stat them per message.
        auto_reload=False,
        cache_size=-1,
    )
    environment.filters["cut_at_word"] = cut_at_word
    return environment


# Left at the end of a cut before its ellipsis, they read as a mistake ("Scaling laws:…").
_DANGLING = " ,;:.-\u2013\u2014\u00b7+&/(["


def cut_at_word(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: whole when it fits, else cut after a
    word and ended with "…". A first word longer than ``width`` is itself cut."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    room = max(width - 1, 0)
    # Cut where a space falls, so the last word kept is whole.
    head = text[: room + 1].rsplit(" ", 1)[0] if " " in text[: room + 1] else text[:room]
    head = head[:room].rstrip(_DANGLING)
    return head + "…" if head else text[:room] + "…"


def premailer_runs(environment: Environment) -> int:
    """How often CSS was inlined so far: once per HTML email template loaded."""
    loader = environment.loader
    return loader.inline_count if isinstance(loader, CssInliningLoader) else 0


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(environment: Environment, name: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Render ``templates/email/<name>/{subject.txt, body.txt, body.html}``."""
    subject = environment.get_template(f"email/{name}/subject.txt").render(context)
    return RenderedEmail(
        # A header must be one line, whatever the template's trailing whitespace.
        subject=" ".join(subject.split()),
        text=environment.get_template(f"email/{name}/body.txt").render(context),
        html=environment.get_template(f"email/{name}/body.html").render(context),
    )
