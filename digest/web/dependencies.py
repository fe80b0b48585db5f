"""What the routes share, as FastAPI dependencies: settings, the database, the
transaction runner, page rendering, signed links and forms, the rate limiter and
the publisher of notices.

:func:`digest.web.app.create_app` builds the collaborators once and keeps them on
``app.state``; the dependencies here only hand them out. They are ``async`` so
that none of them costs a trip through the thread pool, which is sized for the
database connections.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from celery import Celery
from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from config.settings import Settings
from digest.db.unit_of_work import after_commit, unit_of_work
from digest.runtime import Runtime
from digest.subscriptions.library import MAX_UPLOAD_BYTES, FetchArxiv
from digest.subscriptions.links import Links
from digest.subscriptions.ratelimit import RateLimiter
from digest.subscriptions.subscribers import NoticeDue
from digest.subscriptions.tokens import Purpose, Signer
from digest.web.forms import read_form, read_upload_form
from digest.web.origin import check_same_origin, origin_of
from digest.web.rendering import Pages
from digest.web.signed import FormTokens, SignedForm, SignedLink

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Collaborators:
    """Everything the routes use, built by ``create_app`` from its ``Settings``."""

    settings: Settings
    runtime: Runtime
    signer: Signer
    links: Links
    limiter: RateLimiter
    pages: Pages
    celery: Celery

    @property
    def site_origin(self) -> str:
        """The origin of ``BASE_URL``: the only one the site's forms are posted from."""
        return origin_of(self.settings.base_url) or self.settings.base_url


def collaborators_of(request: Request) -> Collaborators:
    """Also for the exception handlers, which FastAPI gives no dependencies."""
    found: Collaborators = request.app.state.collaborators
    return found


class Transaction:
    """Runs a function of a session as one unit of work, in the thread pool so that
    one slow query never stalls the event loop."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, work: Callable[[Session], T]) -> T:
        return await run_in_threadpool(self._run, work)

    def _run(self, work: Callable[[Session], T]) -> T:
        with unit_of_work(self.runtime.session_factory) as session:
            return work(session)


class NoticePublisher:
    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def publish(self, session: Session, outcome: NoticeDue) -> None:
        """Send the outcome's notice once the request's changes are committed."""
        if outcome.notice is None or outcome.subscriber_id is None:
            return
        task = self.celery.tasks["digest.send_notice"]
        args = (outcome.notice.value, outcome.subscriber_id)

        def send() -> None:
            try:
                task.delay(*args)
            except Exception:
                log.exception("could not queue the %s notice", outcome.notice)

        after_commit(session, send)


async def _settings(request: Request) -> Settings:
    return collaborators_of(request).settings


async def _engine(request: Request) -> Engine:
    return collaborators_of(request).runtime.engine


async def _transaction(request: Request) -> Transaction:
    return Transaction(collaborators_of(request).runtime)


async def _pages(request: Request) -> Pages:
    return collaborators_of(request).pages


async def _links(request: Request) -> Links:
    return collaborators_of(request).links


async def _limiter(request: Request) -> RateLimiter:
    return collaborators_of(request).limiter


async def _arxiv(request: Request) -> FetchArxiv:
    return collaborators_of(request).runtime.fetch_arxiv


async def _notices(request: Request) -> NoticePublisher:
    return NoticePublisher(collaborators_of(request).celery)


async def _form_tokens(request: Request) -> FormTokens:
    return FormTokens(collaborators_of(request).signer)


async def _posted_fields(request: Request) -> dict[str, str]:
    return await read_form(request)


async def _form_fields(request: Request) -> dict[str, str]:
    """A state-changing form's fields, once it is known not to come from another site."""
    await _same_origin(request)
    return await _posted_fields(request)


async def _same_origin(request: Request) -> None:
    check_same_origin(request.headers, collaborators_of(request).site_origin)


async def _unsubscribe_fields(request: Request) -> dict[str, str]:
    # RFC 8058's one-click POST is cross-site by design (a mail client sends it,
    # on the strength of the link alone), so it alone skips the origin check.
    fields = await _posted_fields(request)
    if fields.get("List-Unsubscribe") != "One-Click":
        await _same_origin(request)
    return fields


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]
TransactionDep = Annotated[Transaction, Depends(_transaction)]
PagesDep = Annotated[Pages, Depends(_pages)]
LinksDep = Annotated[Links, Depends(_links)]
LimiterDep = Annotated[RateLimiter, Depends(_limiter)]
NoticesDep = Annotated[NoticePublisher, Depends(_notices)]
ArxivDep = Annotated[FetchArxiv, Depends(_arxiv)]
FormTokensDep = Annotated[FormTokens, Depends(_form_tokens)]
FormFields = Annotated[dict[str, str], Depends(_form_fields)]
# For a state-changing POST that reads no form (a confirmation button).
SameOrigin = Depends(_same_origin)
UnsubscribeFields = Annotated[dict[str, str], Depends(_unsubscribe_fields)]


def _verified(request: Request, purpose: Purpose, token: str) -> SignedLink:
    return SignedLink(token, collaborators_of(request).signer.verify(purpose, token))


def signed_link_for(purpose: Purpose) -> Callable[[Request, str], Awaitable[SignedLink]]:
    """A dependency: the ``{token}`` of the path, its signature good for ``purpose``."""

    async def signed_link(request: Request, token: str) -> SignedLink:
        return _verified(request, purpose, token)

    return signed_link


def _signed_form(
    purpose: Purpose,
) -> Callable[[dict[str, str], Request, str], Awaitable[SignedForm]]:
    # The body is read before the link is checked, as a form's route always has.
    async def signed_form(fields: FormFields, request: Request, token: str) -> SignedForm:
        link = _verified(request, purpose, token)
        return SignedForm(fields, link, FormTokens(collaborators_of(request).signer))

    return signed_form


ConfirmLink = Annotated[SignedLink, Depends(signed_link_for(Purpose.CONFIRM))]
ChangeEmailLink = Annotated[SignedLink, Depends(signed_link_for(Purpose.CHANGE_EMAIL))]
PreferencesLink = Annotated[SignedLink, Depends(signed_link_for(Purpose.PREFERENCES))]
FeedbackLink = Annotated[SignedLink, Depends(signed_link_for(Purpose.FEEDBACK))]
UnsubscribeLink = Annotated[SignedLink, Depends(signed_link_for(Purpose.UNSUBSCRIBE))]
PreferencesForm = Annotated[SignedForm, Depends(_signed_form(Purpose.PREFERENCES))]
UnsubscribeForm = Annotated[SignedForm, Depends(_signed_form(Purpose.UNSUBSCRIBE))]


# The library form's fields: pasted ids (200 references of a long URL each, with
# room to spare) and the file input, the one file any form of the site accepts.
LIBRARY_FILE_FIELD = "library_file"
LIBRARY_FIELD_LIMITS = {"papers": 40_000}


@dataclass(frozen=True)
class LibraryUpload:
    """The library form: its signed fields, and the file uploaded with them."""

    form: SignedForm
    file: bytes | None


async def _library_upload(request: Request, token: str) -> LibraryUpload:
    await _same_origin(request)
    fields, file = await read_upload_form(
        request,
        file_field=LIBRARY_FILE_FIELD,
        max_file_bytes=MAX_UPLOAD_BYTES,
        field_limits=LIBRARY_FIELD_LIMITS,
    )
    link = _verified(request, Purpose.PREFERENCES, token)
    tokens = FormTokens(collaborators_of(request).signer)
    return LibraryUpload(SignedForm(fields, link, tokens), file)


LibraryForm = Annotated[LibraryUpload, Depends(_library_upload)]
