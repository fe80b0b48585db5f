"""FastAPI application factory: the pages a subscriber reaches from the site and
from the links in every email.

- ``/``: subscribe (double opt-in). The answer is the same whether the address
  is new, pending or subscribed; a honeypot field and rate limits per client IP
  and per address keep the form from being used to bomb an inbox.
- ``/confirm/<token>``, ``/confirm-email/<token>``: GET shows a button (mail
  scanners follow GET links, so no GET changes anything), POST acts. Single use.
- ``/preferences/<token>``: everything a reader can change, each form signed
  against cross-site requests; download my data; delete me.
- ``/unsubscribe/<token>``: GET shows a button, POST unsubscribes. A POST whose
  body is ``List-Unsubscribe=One-Click`` is the RFC 8058 one-click request that
  mail clients send without cookies; it gets a plain 200.

Routes parse the request and render; what they do is in :mod:`digest.subscribers`.
Database work runs in the thread pool so one slow query never stalls the loop;
on PostgreSQL the one-click POSTs, which arrive by the thousand after a send, are
answered on the loop before routing (:mod:`digest.web.one_click`).
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from anyio import to_thread
from celery import Celery
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.settings import Settings, get_settings
from digest.clock import utcnow
from digest.db.unit_of_work import after_commit, unit_of_work
from digest.papers.models import Paper
from digest.runtime import Runtime
from digest.subscriptions.feedback import parse_kind, record_feedback, withdraw_feedback
from digest.subscriptions.models import FeedbackKind, Frequency, Subscriber, SubscriberStatus
from digest.subscriptions.ratelimit import RateLimiter
from digest.subscriptions.subscribers import (
    MAX_INTERESTS,
    WEEKDAYS,
    InvalidEmail,
    InvalidPreferences,
    NoticeDue,
    Preferences,
    SubscriberError,
    apply_preferences,
    confirm_email_change,
    confirm_subscription,
    erase_subscriber,
    normalise_email,
    parse_preferences,
    personal_data,
    request_email_change,
    request_subscription,
    resubscribe,
    set_paused,
    unsubscribe,
    unsubscribe_by_link,
)
from digest.subscriptions.tokens import InvalidToken, Purpose
from digest.web.access_log import redact_access_log
from digest.web.one_click import OneClickShortcut, OneClickUnsubscriber

log = logging.getLogger(__name__)
T = TypeVar("T")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response. Plain ASGI: ``@app.middleware``
    (BaseHTTPMiddleware) costs a task and a stream per request, 8% of the
    one-click spike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LinkGone(Exception):
    """A well-signed link for a subscriber who no longer exists (erased)."""


def app_from_environment() -> FastAPI:
    """The app as ``digest web`` serves it, from ``DIGEST_*`` (uvicorn's factory)."""
    app = create_app(get_settings())
    redact_access_log()
    # What the imports and the app built lives as long as the process: frozen, the
    # cyclic collector's full passes no longer walk it. Under the one-click spike
    # they came every second or two and took ~100 ms each: the whole p99.
    gc.collect()
    gc.freeze()
    return app


def create_app(settings: Settings, celery: Celery | None = None) -> FastAPI:
    sqlite = settings.resolved_database_url.startswith("sqlite")
    runtime = Runtime(
        settings,
        **(
            {}
            if sqlite
            else {
                "pool_size": settings.web_db_connections,
                "max_overflow": 0,
                # A pre-ping is a second round trip and transaction per request; a
                # dropped connection is instead found by the request that meets it
                # and the pool discarded then.
                "pool_pre_ping": False,
                "pool_recycle": 1800,
            }
        ),
    )
    signer = runtime.signer
    links = runtime.links
    limiter = RateLimiter(settings.rate_limit_url)
    if celery is None:
        from workers.app import create_celery

        celery = create_celery(settings)
    pages = Environment(
        loader=FileSystemLoader(str(settings.templates_dir)),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
    )

    # The one-click POSTs after a send, on the event loop (see digest.web.one_click).
    one_click = (
        None
        if sqlite
        else OneClickUnsubscriber(runtime.engine, connections=settings.web_db_connections)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Request threads, each with a connection when it needs one.
        to_thread.current_default_thread_limiter().total_tokens = settings.web_db_connections
        if one_click is not None:
            await one_click.open()
        try:
            yield
        finally:
            if one_click is not None:
                await one_click.close()
            runtime.dispose()

    app = FastAPI(
        title=settings.site_name,
        summary="Trending research papers in your inbox: subscription pages and API.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    if one_click is not None:
        app.add_middleware(OneClickShortcut, unsubscriber=one_click, signer=signer)
    # Added last, so outermost: its headers go on the shortcut's answers too.
    app.add_middleware(SecurityHeaders)
    app.state.runtime = runtime
    app.state.one_click = one_click

    def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = pages.get_template(f"web/{name}.html").render(
            site_name=settings.site_name, **context
        )
        return HTMLResponse(html, status_code=status_code)

    def message(
        title: str, body: str, status_code: int = 200, link: tuple[str, str] | None = None
    ) -> HTMLResponse:
        return page("message", status_code, title=title, body=body, link=link)

    def in_transaction(work: Callable[[Session], T]) -> Callable[[], T]:
        def run() -> T:
            with unit_of_work(runtime.session_factory) as session:
                return work(session)

        return run

    async def transaction(work: Callable[[Session], T]) -> T:
        return await run_in_threadpool(in_transaction(work))

    def holder(session: Session, purpose: Purpose, token: str) -> tuple[Subscriber, int | None]:
        """The subscriber a link was signed for, and the link's nonce."""
        claims = signer.verify(purpose, token)
        subscriber = session.get(Subscriber, claims.subscriber_id)
        if subscriber is None:
            raise LinkGone()
        if subscriber.token_version != claims.version:
            raise InvalidToken("this link is no longer valid")
        return subscriber, claims.nonce

    def form_token(subscriber: Subscriber) -> str:
        return signer.sign(
            Purpose.FORM, subscriber_id=subscriber.id, version=subscriber.token_version
        )

    def check_form_token(subscriber: Subscriber, fields: dict[str, str]) -> None:
        try:
            claims = signer.verify(Purpose.FORM, fields.get("csrf", ""))
        except InvalidToken:
            raise InvalidToken("this form has expired or did not come from this site") from None
        if (claims.subscriber_id, claims.version) != (subscriber.id, subscriber.token_version):
            raise InvalidToken("this form did not come from your preferences page")

    def publish(session: Session, outcome: NoticeDue) -> None:
        """Send the outcome's notice once the request's changes are committed."""
        if outcome.notice is None or outcome.subscriber_id is None:
            return
        task = celery.tasks["digest.send_notice"]
        args = (outcome.notice.value, outcome.subscriber_id)

        def send() -> None:
            try:
                task.delay(*args)
            except Exception:
                log.exception("could not queue the %s notice", outcome.notice)

        after_commit(session, send)

    async def form_fields(request: Request) -> dict[str, str]:
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}

    Action = Callable[[Session, Subscriber, dict[str, str]], HTMLResponse]

    async def signed_form(
        request: Request, purpose: Purpose, token: str, act: Action
    ) -> HTMLResponse:
        """Run ``act`` for the link's subscriber, once the form proves it is ours."""
        fields = await form_fields(request)

        def run(session: Session) -> HTMLResponse:
            subscriber, _ = holder(session, purpose, token)
            check_form_token(subscriber, fields)
            return act(session, subscriber, fields)

        return await transaction(run)

    @app.exception_handler(InvalidToken)
    async def invalid_token(request: Request, exc: InvalidToken) -> Response:
        return page("invalid_link", status_code=400, reason=exc.reason)

    @app.exception_handler(LinkGone)
    async def link_gone(request: Request, exc: LinkGone) -> Response:
        return message(
            "This subscription no longer exists",
            "It was deleted, with everything we knew about it, so its links do nothing "
            "any more. You can subscribe again from the front page at any time.",
            status_code=404,
            link=("/", "Subscribe"),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Pages for people; the JSON parts (health, data download) never raise these.
        if exc.status_code == 404:
            return message(
                "Page not found", "There is nothing at this address.", 404, link=("/", "Subscribe")
            )
        if exc.status_code == 405:
            return message("Not allowed", "This page cannot be used that way.", 405)
        return message("Something is wrong", str(exc.detail), exc.status_code)

    @app.get("/health")
    def health() -> JSONResponse:
        try:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return JSONResponse({"status": "error", "database": str(exc.__class__.__name__)}, 503)
        return JSONResponse({"status": "ok", "database": "ok"})

    # -- subscribe -----------------------------------------------------------------

    def subscribe_form(
        status_code: int = 200, values: dict[str, str] | None = None, **errors: str
    ) -> HTMLResponse:
        return page(
            "subscribe",
            status_code,
            values={"email": "", "interests": "", "frequency": "daily", **(values or {})},
            errors=errors,
        )

    @app.get("/", response_class=HTMLResponse)
    def subscribe_page() -> HTMLResponse:
        return subscribe_form()

    @app.post("/", response_class=HTMLResponse)
    async def subscribe_post(request: Request) -> HTMLResponse:
        fields = await form_fields(request)
        values = {k: fields.get(k, "").strip() for k in ("email", "interests", "frequency")}
        if fields.get("website"):
            # Only a bot fills the field people cannot see: it learns nothing.
            return page("check_inbox", email=values["email"])
        client = request.client.host if request.client else "unknown"
        if not limiter.allow(settings.subscribe_limit_per_ip, "subscribe-ip", client):
            return message(
                "Too many attempts",
                "This network has asked for many subscriptions in a short time. "
                "Please try again in an hour.",
                status_code=429,
            )
        errors: dict[str, str] = {}
        try:
            address = normalise_email(values["email"])
        except InvalidEmail as exc:
            errors["email"] = (
                f"Please enter a valid email address: {exc.detail}"
                if values["email"]
                else "Please enter your email address."
            )
        if values["frequency"] not in {f.value for f in Frequency}:
            errors["frequency"] = "choose daily or weekly"
        if len(values["interests"]) > MAX_INTERESTS:
            errors["interests"] = f"interests must be at most {MAX_INTERESTS} characters"
        if errors:
            return subscribe_form(400, values, **errors)

        def subscribe(session: Session) -> None:
            outcome = request_subscription(
                session,
                email=address,
                now=utcnow(),
                interests=values["interests"],
                frequency=Frequency(values["frequency"]),
            )
            # Past the per-address limit the page says the same, but nothing is sent.
            if limiter.allow(settings.confirm_limit_per_address, "notice", address):
                publish(session, outcome)
            else:
                log.warning("subscribe: notice limit reached for an address; not sent")

        await transaction(subscribe)
        return page("check_inbox", email=address)

    # -- confirmations ---------------------------------------------------------------

    @app.get("/confirm/{token}", response_class=HTMLResponse)
    async def confirm_page(token: str) -> HTMLResponse:
        def look(session: Session) -> HTMLResponse:
            subscriber, nonce = holder(session, Purpose.CONFIRM, token)
            if nonce != subscriber.confirm_nonce or subscriber.status != SubscriberStatus.PENDING:
                return already_confirmed(subscriber)
            return page("confirm", email=subscriber.email, action=f"/confirm/{token}")

        return await transaction(look)

    def already_confirmed(subscriber: Subscriber) -> HTMLResponse:
        if subscriber.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
            return message(
                "Your subscription is confirmed",
                f"{subscriber.email} is subscribed. This link has done its job.",
                link=(links.preferences(subscriber), "Manage your preferences"),
            )
        raise InvalidToken("this confirmation link was already used; subscribe again for a new one")

    @app.post("/confirm/{token}", response_class=HTMLResponse)
    async def confirm_post(token: str) -> HTMLResponse:
        def confirm(session: Session) -> HTMLResponse:
            subscriber, nonce = holder(session, Purpose.CONFIRM, token)
            if nonce != subscriber.confirm_nonce:
                return already_confirmed(subscriber)
            if not confirm_subscription(subscriber, now=utcnow()):
                return already_confirmed(subscriber)
            return page(
                "confirmed",
                email=subscriber.email,
                preferences_url=links.preferences(subscriber),
                frequency=subscriber.frequency.value,
                send_hour=subscriber.send_hour,
                timezone=subscriber.timezone,
            )

        return await transaction(confirm)

    @app.get("/confirm-email/{token}", response_class=HTMLResponse)
    async def confirm_email_page(token: str) -> HTMLResponse:
        def look(session: Session) -> HTMLResponse:
            subscriber, nonce = holder(session, Purpose.CHANGE_EMAIL, token)
            if nonce != subscriber.confirm_nonce or subscriber.pending_email is None:
                raise InvalidToken("this confirmation link was already used")
            return page(
                "confirm_email",
                email=subscriber.email,
                new_email=subscriber.pending_email,
                action=f"/confirm-email/{token}",
            )

        return await transaction(look)

    @app.post("/confirm-email/{token}", response_class=HTMLResponse)
    async def confirm_email_post(token: str) -> HTMLResponse:
        def confirm(session: Session) -> HTMLResponse:
            subscriber, nonce = holder(session, Purpose.CHANGE_EMAIL, token)
            if nonce != subscriber.confirm_nonce:
                raise InvalidToken("this confirmation link was already used")
            try:
                address = confirm_email_change(session, subscriber)
            except SubscriberError as exc:
                return message("Address not changed", str(exc), status_code=409)
            return message(
                "Address changed",
                f"Your digests now go to {address}.",
                link=(links.preferences(subscriber), "Manage your preferences"),
            )

        return await transaction(confirm)

    # -- preferences ----------------------------------------------------------------

    def preferences_page(
        subscriber: Subscriber,
        token: str,
        *,
        status_code: int = 200,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        notice: str = "",
    ) -> HTMLResponse:
        current = Preferences.of(subscriber)
        shown = {
            "interests": current.interests,
            "followed_authors": "\n".join(current.followed_authors),
            "categories": ", ".join(current.categories),
            "excluded_keywords": ", ".join(current.excluded_keywords),
            "frequency": current.frequency.value,
            "weekly_day": str(current.weekly_day),
            "send_hour": str(current.send_hour),
            "timezone": current.timezone,
            "papers_per_digest": str(current.papers_per_digest),
            "new_email": "",
            **(values or {}),
        }
        return page(
            "preferences",
            status_code,
            subscriber=subscriber,
            paused=subscriber.status == SubscriberStatus.PAUSED,
            active=subscriber.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED),
            status=subscriber.status.value,
            values=shown,
            errors=errors or {},
            notice=notice,
            weekdays=list(enumerate(WEEKDAYS)),
            csrf=form_token(subscriber),
            base=f"/preferences/{token}",
            unsubscribe_url=f"/unsubscribe/{links.token(Purpose.UNSUBSCRIBE, subscriber)}",
        )

    @app.get("/preferences/{token}", response_class=HTMLResponse)
    async def preferences_get(token: str) -> HTMLResponse:
        def show(session: Session) -> HTMLResponse:
            subscriber, _ = holder(session, Purpose.PREFERENCES, token)
            return preferences_page(subscriber, token)

        return await transaction(show)

    @app.post("/preferences/{token}", response_class=HTMLResponse)
    async def preferences_post(token: str, request: Request) -> HTMLResponse:
        def save(session: Session, subscriber: Subscriber, fields: dict[str, str]) -> HTMLResponse:
            try:
                preferences = parse_preferences(fields)
            except InvalidPreferences as exc:
                # Nothing is changed: the form comes back with what was typed.
                return preferences_page(
                    subscriber, token, status_code=400, values=fields, errors=exc.errors
                )
            apply_preferences(subscriber, preferences)
            return preferences_page(subscriber, token, notice="Your preferences are saved.")

        return await signed_form(request, Purpose.PREFERENCES, token, save)

    @app.post("/preferences/{token}/pause", response_class=HTMLResponse)
    async def pause_post(token: str, request: Request) -> HTMLResponse:
        def pause(session: Session, subscriber: Subscriber, fields: dict[str, str]) -> HTMLResponse:
            paused = fields.get("paused") == "1"
            changed = set_paused(subscriber, paused)
            notice = (
                ("Digests are paused." if paused else "Digests are back on.")
                if changed
                else "Nothing to change."
            )
            return preferences_page(subscriber, token, notice=notice)

        return await signed_form(request, Purpose.PREFERENCES, token, pause)

    @app.post("/preferences/{token}/email", response_class=HTMLResponse)
    async def email_post(token: str, request: Request) -> HTMLResponse:
        def change(
            session: Session, subscriber: Subscriber, fields: dict[str, str]
        ) -> HTMLResponse:
            try:
                outcome = request_email_change(session, subscriber, fields.get("new_email", ""))
            except SubscriberError as exc:
                return preferences_page(
                    subscriber,
                    token,
                    status_code=400,
                    values={"new_email": fields.get("new_email", "")},
                    errors={"new_email": str(exc)},
                )
            address = normalise_email(fields.get("new_email", ""))
            if limiter.allow(settings.confirm_limit_per_address, "notice", address):
                publish(session, outcome)
            return preferences_page(
                subscriber,
                token,
                notice=f"We sent a confirmation link to {address}. "
                "Your digests move there once you follow it.",
            )

        return await signed_form(request, Purpose.PREFERENCES, token, change)

    @app.get("/preferences/{token}/data.json")
    async def download_data(token: str) -> Response:
        def export(session: Session) -> dict[str, Any]:
            subscriber, _ = holder(session, Purpose.PREFERENCES, token)
            return personal_data(session, subscriber)

        data = await transaction(export)
        return Response(
            json.dumps(data, indent=2, ensure_ascii=False),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="my-digest-data.json"'},
        )

    @app.get("/preferences/{token}/delete", response_class=HTMLResponse)
    async def delete_page(token: str) -> HTMLResponse:
        def show(session: Session) -> HTMLResponse:
            subscriber, _ = holder(session, Purpose.PREFERENCES, token)
            return page(
                "delete",
                email=subscriber.email,
                csrf=form_token(subscriber),
                action=f"/preferences/{token}/delete",
                back=f"/preferences/{token}",
            )

        return await transaction(show)

    @app.post("/preferences/{token}/delete", response_class=HTMLResponse)
    async def delete_post(token: str, request: Request) -> HTMLResponse:
        def erase(session: Session, subscriber: Subscriber, fields: dict[str, str]) -> HTMLResponse:
            erase_subscriber(session, subscriber)
            return message(
                "Your data is deleted",
                "Your address, preferences and the record of digests sent to you are gone. "
                "You will receive nothing more from us.",
            )

        return await signed_form(request, Purpose.PREFERENCES, token, erase)

    # -- feedback: "more / fewer like this" on a paper of a digest -----------------

    def feedback_holder(session: Session, token: str) -> tuple[Subscriber, Paper | None]:
        """The link's subscriber and paper (None: the paper was deleted since)."""
        subscriber, paper_id = holder(session, Purpose.FEEDBACK, token)
        if paper_id is None:
            raise InvalidToken("this link is not valid")
        return subscriber, session.get(Paper, paper_id)

    def paper_gone(subscriber: Subscriber) -> HTMLResponse:
        # Not LinkGone: the subscription is fine, only the paper is not.
        return message(
            "This paper is no longer here",
            "It has been removed, so feedback on it would change nothing. "
            "Your subscription is not affected.",
            status_code=404,
            link=(links.preferences(subscriber), "Edit your interests and other preferences"),
        )

    def feedback_view(
        subscriber: Subscriber, paper: Paper, token: str, kind: str, *, done: bool
    ) -> HTMLResponse:
        return page(
            "feedback",
            kind=kind,
            done=done,
            token=token,
            title=paper.shown_title,
            email=subscriber.email,
            preferences_url=links.preferences(subscriber),
        )

    @app.get("/feedback/{token}", response_class=HTMLResponse)
    async def feedback_page(token: str, kind: str = "more") -> HTMLResponse:
        # A GET never records anything: mail scanners follow links.
        def show(session: Session) -> HTMLResponse:
            subscriber, paper = feedback_holder(session, token)
            if paper is None:
                return paper_gone(subscriber)
            wanted = parse_kind(kind) or FeedbackKind.MORE
            return feedback_view(subscriber, paper, token, wanted.value, done=False)

        return await transaction(show)

    @app.post("/feedback/{token}", response_class=HTMLResponse)
    async def feedback_post(token: str, request: Request) -> HTMLResponse:
        fields = await form_fields(request)

        def record(session: Session) -> HTMLResponse:
            subscriber, paper = feedback_holder(session, token)
            if paper is None:
                return paper_gone(subscriber)
            wanted = fields.get("kind", "")
            kind = parse_kind(wanted)
            if kind is not None:
                record_feedback(session, subscriber, paper.id, kind, now=utcnow())
            elif wanted == "clear":
                withdraw_feedback(session, subscriber, paper.id)
            else:
                return message("Unknown choice", "Use the buttons of the page.", 400)
            return feedback_view(subscriber, paper, token, wanted, done=True)

        return await transaction(record)

    # -- unsubscribe ----------------------------------------------------------------

    @app.get("/unsubscribe/{token}", response_class=HTMLResponse)
    async def unsubscribe_page(token: str) -> HTMLResponse:
        def show(session: Session) -> HTMLResponse:
            subscriber, _ = holder(session, Purpose.UNSUBSCRIBE, token)
            return unsubscribe_view(subscriber, token, done=False)

        return await transaction(show)

    def unsubscribe_view(subscriber: Subscriber, token: str, *, done: bool) -> HTMLResponse:
        return page(
            "unsubscribe",
            email=subscriber.email,
            token=token,
            done=done or subscriber.status == SubscriberStatus.UNSUBSCRIBED,
            preferences_url=links.preferences(subscriber),
            csrf=form_token(subscriber),
        )

    @app.post("/unsubscribe/{token}", response_model=None)
    async def unsubscribe_post(token: str, request: Request) -> Response:
        fields = await form_fields(request)
        one_click = fields.get("List-Unsubscribe") == "One-Click"

        if one_click:
            claims = signer.verify(Purpose.UNSUBSCRIBE, token)

            def one_statement() -> bool:
                # A connection, not a session: this is the spike after every send.
                with runtime.engine.begin() as connection:
                    return unsubscribe_by_link(
                        connection, claims.subscriber_id, claims.version, now=utcnow()
                    )

            if await run_in_threadpool(one_statement):
                return PlainTextResponse("You have been unsubscribed.")

        def leave(session: Session) -> Response:
            # Also says why a one-click failed: the subscriber was erased, or links revoked.
            subscriber, _ = holder(session, Purpose.UNSUBSCRIBE, token)
            unsubscribe(session, subscriber, now=utcnow())
            if one_click:
                return PlainTextResponse("You have been unsubscribed.")
            return unsubscribe_view(subscriber, token, done=True)

        return await transaction(leave)

    @app.post("/unsubscribe/{token}/resubscribe", response_class=HTMLResponse)
    async def resubscribe_post(token: str, request: Request) -> HTMLResponse:
        def come_back(
            session: Session, subscriber: Subscriber, fields: dict[str, str]
        ) -> HTMLResponse:
            resubscribe(subscriber, now=utcnow())
            return message(
                "Welcome back",
                f"Digests to {subscriber.email} start again with the next edition.",
                link=(links.preferences(subscriber), "Manage your preferences"),
            )

        return await signed_form(request, Purpose.UNSUBSCRIBE, token, come_back)

    return app
