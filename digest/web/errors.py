"""Every error a reader can meet is a page: a bad or revoked link, an erased
reader, an unknown address or method."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

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
        page = pages.message("Not allowed", "This page cannot be used that way.", 405)
        page.headers.update(exc.headers or {})
        page.headers["Allow"] = ", ".join(allowed_methods(request))
        return page
    page = pages.message("Something is wrong", str(exc.detail), exc.status_code)
    page.headers.update(exc.headers or {})
    return page


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path answers (RFC 9110's Allow): Starlette's
    405 names only the first route's, and a page's GET and POST are two routes."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def add_error_pages(app: FastAPI) -> None:
    app.exception_handler(InvalidToken)(invalid_token)
    app.exception_handler(LinkGone)(link_gone)
    app.exception_handler(StarletteHTTPException)(http_error)
