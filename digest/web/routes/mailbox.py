"""``/mailbox``: the mail viewer of ``digest serve``, what its SMTP sink received.

Included by :func:`digest.web.app.create_app` only when it is given a mailbox
(``digest serve``): the production app has no such pages. An email's HTML is
shown in a sandboxed frame without scripts, served by ``/mailbox/<id>/html`` under
a policy of its own that loads nothing from anywhere; its links open in a new tab
outside the sandbox, so "Confirm" in a confirmation email leads to the site.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from digest.mail.mailbox import Mailbox, NoSuchMessage, StoredMessage
from digest.web.dependencies import PagesDep
from digest.web.security_headers import SECURITY_HEADERS

router = APIRouter()

# The message page frames its HTML part, from this site only.
PAGE_POLICY = SECURITY_HEADERS["Content-Security-Policy"] + "; frame-src 'self'"
# An email's HTML: inline styles and data: images, nothing fetched, no scripts, no
# forms; framed only by the message page. The sandbox directive holds even when
# the part is opened by itself, outside the frame.
EMAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
# Links leave the frame: the site's own pages refuse to be framed.
_BASE = '<base target="_blank">'


def _mailbox(request: Request) -> Mailbox:
    mailbox: Mailbox = request.app.state.mailbox
    return mailbox


def _message(request: Request, message_id: str) -> StoredMessage:
    try:
        return _mailbox(request).get(message_id)
    except NoSuchMessage:
        raise HTTPException(404) from None


def with_links_in_new_tabs(html: str) -> str:
    found = _HEAD.search(html)
    if found is None:
        return _BASE + html
    return html[: found.end()] + _BASE + html[found.end() :]


@router.get("/mailbox", response_class=HTMLResponse)
def mailbox_page(request: Request, pages: PagesDep) -> HTMLResponse:
    mailbox = _mailbox(request)
    return pages.page("mailbox", messages=mailbox.summaries(), folder=str(mailbox.directory))


@router.get("/mailbox/{message_id}", response_class=HTMLResponse)
def message_page(
    request: Request,
    message_id: str,
    pages: PagesDep,
    part: Annotated[Literal["html", "text", "raw"] | None, Query()] = None,
) -> HTMLResponse:
    stored = _message(request, message_id)
    has_html = stored.html() is not None
    shown = part or ("html" if has_html else "text")
    page = pages.page(
        "mailbox_message",
        stored=stored,
        shown=shown,
        has_html=has_html,
        text=stored.text(),
        sandbox=SANDBOX,
    )
    page.headers["Content-Security-Policy"] = PAGE_POLICY
    page.headers["X-Frame-Options"] = "DENY"
    return page


@router.get("/mailbox/{message_id}/html", response_class=HTMLResponse)
def message_html(request: Request, message_id: str) -> HTMLResponse:
    html = _message(request, message_id).html()
    if html is None:
        raise HTTPException(404)
    return HTMLResponse(
        with_links_in_new_tabs(html),
        headers={"Content-Security-Policy": EMAIL_POLICY, "X-Frame-Options": "SAMEORIGIN"},
    )
