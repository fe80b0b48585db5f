"""FastAPI application factory.

The unsubscribe endpoint is here from the start because every digest links to it
(``List-Unsubscribe``): GET shows a page with one button (mail scanners follow
GET links, so GET changes nothing), POST unsubscribes. A POST whose body is
``List-Unsubscribe=One-Click`` is the RFC 8058 one-click request that mail
clients send without cookies; it gets a plain 200.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from config.settings import Settings
from digest.db import unit_of_work, utcnow
from digest.models import Subscriber
from digest.runtime import Runtime
from digest.subscribers import unsubscribe
from digest.tokens import InvalidToken, Purpose, Signer

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    signer = Signer(settings.secret_key)
    pages = Environment(
        loader=FileSystemLoader(str(settings.templates_dir)),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
    )
    app = FastAPI(title=settings.site_name, docs_url=None, redoc_url=None)
    app.state.runtime = runtime

    def page(name: str, status_code: int = 200, **context: object) -> HTMLResponse:
        html = pages.get_template(f"web/{name}.html").render(
            site_name=settings.site_name, **context
        )
        return HTMLResponse(html, status_code=status_code)

    def subscriber_for(session: Session, token: str) -> Subscriber:
        claims = signer.verify(Purpose.UNSUBSCRIBE, token)
        subscriber = session.get(Subscriber, claims.subscriber_id)
        if subscriber is None or subscriber.token_version != claims.version:
            raise InvalidToken("this link is no longer valid")
        return subscriber

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(InvalidToken)
    async def invalid_token(request: Request, exc: InvalidToken) -> Response:
        return page("invalid_link", status_code=400, reason=exc.reason)

    @app.get("/health")
    def health() -> JSONResponse:
        try:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return JSONResponse({"status": "error", "database": str(exc.__class__.__name__)}, 503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get("/unsubscribe/{token}")
    def unsubscribe_page(token: str) -> HTMLResponse:
        with unit_of_work(runtime.session_factory) as session:
            email = subscriber_for(session, token).email
        return page("unsubscribe", email=email, token=token, done=False)

    @app.post("/unsubscribe/{token}", response_model=None)
    async def unsubscribe_post(token: str, request: Request) -> Response:
        form = await request.form()
        one_click = form.get("List-Unsubscribe") == "One-Click"
        with unit_of_work(runtime.session_factory) as session:
            subscriber = subscriber_for(session, token)
            unsubscribe(session, subscriber, now=utcnow())
            email = subscriber.email
        if one_click:
            return PlainTextResponse("You have been unsubscribed.")
        return page("unsubscribe", email=email, token=token, done=True)

    return app
