"""Every error a reader can meet is a page: a bad or revoked link, an erased
reader, an unknown address or method."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from digest.subscriptions.tokens import InvalidToken
from digest.web.dependencies import collaborators_of
from digest.web.signed import LinkGone


async def invalid_token(request: Request, exc: InvalidToken) -> Response:
    return collaborators_of(request).pages.page("invalid_link", status_code=400, reason=exc.reason)


async def link_gone(request: Request, exc: LinkGone) -> Response:
    return collaborators_of(request).pages.message(
        "This subscription no longer exists",
        "It was deleted, with everything we knew about it, so its links do nothing "
        "any more. You can subscribe again from the front page at any time.",
        status_code=404,
        link=("/", "Subscribe"),
    )


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    # Pages for people; the JSON parts (health, data download) never raise these.
    pages = collaborators_of(request).pages
    if exc.status_code == 404:
        return pages.message(
            "Page not found", "There is nothing at this address.", 404, link=("/", "Subscribe")
        )
    if exc.status_code == 405:
        answer = pages.message("Not allowed", "This page cannot be used that way.", 405)
        # RFC 9110: a 405 says which methods the page takes; Starlette puts them here.
        answer.headers.update(exc.headers or {})
        return answer
    return pages.message("Something is wrong", str(exc.detail), exc.status_code)


def add_error_pages(app: FastAPI) -> None:
    app.exception_handler(InvalidToken)(invalid_token)
    app.exception_handler(LinkGone)(link_gone)
    app.exception_handler(StarletteHTTPException)(http_error)
