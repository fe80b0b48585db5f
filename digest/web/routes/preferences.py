"""``/preferences/<token>``: everything a reader can change, each form signed
against cross-site requests; download my data; delete me."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.library import MAX_UPLOAD_BYTES, references_of
from digest.subscriptions.links import Links
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import (
    WEEKDAYS,
    InvalidPreferences,
    Preferences,
    SubscriberError,
    apply_preferences,
    erase_subscriber,
    normalise_email,
    parse_preferences,
    personal_data,
    request_email_change,
    set_paused,
    sign_out_links,
)
from digest.subscriptions.tokens import Purpose
from digest.web.dependencies import (
    FormTokensDep,
    LimiterDep,
    LinksDep,
    NoticesDep,
    PagesDep,
    PreferencesForm,
    PreferencesLink,
    SettingsDep,
    TransactionDep,
)
from digest.web.rendering import Pages
from digest.web.signed import FormTokens

router = APIRouter()


@dataclass(frozen=True)
class PreferencesPage:
    pages: Pages
    links: Links
    form_tokens: FormTokens

    def render(
        self,
        session: Session,
        subscriber: Subscriber,
        token: str,
        *,
        status_code: int = 200,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        notice: str = "",
        library_report: list[str] | None = None,
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
        return self.pages.page(
            "preferences",
            status_code,
            subscriber=subscriber,
            paused=subscriber.status == SubscriberStatus.PAUSED,
            active=subscriber.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED),
            status=subscriber.status.value,
            values=shown,
            errors=errors or {},
            notice=notice,
            library_report=library_report or [],
            references=references_of(session, subscriber),
            max_upload_mb=MAX_UPLOAD_BYTES // 1_000_000,
            weekdays=list(enumerate(WEEKDAYS)),
            csrf=self.form_tokens.issue(subscriber),
            base=f"/preferences/{token}",
            unsubscribe_url=f"/unsubscribe/{self.links.token(Purpose.UNSUBSCRIBE, subscriber)}",
            feed_url=self.links.feed(subscriber),
        )


async def _preferences_page(
    pages: PagesDep, links: LinksDep, form_tokens: FormTokensDep
) -> PreferencesPage:
    return PreferencesPage(pages, links, form_tokens)


PreferencesPageDep = Annotated[PreferencesPage, Depends(_preferences_page)]


@router.get("/preferences/{token}", response_class=HTMLResponse)
async def preferences_get(
    link: PreferencesLink, view: PreferencesPageDep, transaction: TransactionDep
) -> HTMLResponse:
    def show(session: Session) -> HTMLResponse:
        return view.render(session, link.holder(session), link.token)

    return await transaction(show)


@router.post("/preferences/{token}", response_class=HTMLResponse)
async def preferences_post(
    form: PreferencesForm, view: PreferencesPageDep, transaction: TransactionDep
) -> HTMLResponse:
    token = form.link.token

    def save(session: Session) -> HTMLResponse:
        subscriber = form.holder(session)
        try:
            preferences = parse_preferences(form.fields)
        except InvalidPreferences as exc:
            # Nothing is changed: the form comes back with what was typed.
            return view.render(
                session, subscriber, token, status_code=400, values=form.fields, errors=exc.errors
            )
        apply_preferences(subscriber, preferences)
        return view.render(session, subscriber, token, notice="Your preferences are saved.")

    return await transaction(save)


@router.post("/preferences/{token}/pause", response_class=HTMLResponse)
async def pause_post(
    form: PreferencesForm, view: PreferencesPageDep, transaction: TransactionDep
) -> HTMLResponse:
    def pause(session: Session) -> HTMLResponse:
        subscriber = form.holder(session)
        paused = form.fields.get("paused") == "1"
        changed = set_paused(subscriber, paused)
        notice = (
            ("Digests are paused." if paused else "Digests are back on.")
            if changed
            else "Nothing to change."
        )
        return view.render(session, subscriber, form.link.token, notice=notice)

    return await transaction(pause)


@router.post("/preferences/{token}/email", response_class=HTMLResponse)
async def email_post(
    form: PreferencesForm,
    view: PreferencesPageDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    notices: NoticesDep,
    transaction: TransactionDep,
) -> HTMLResponse:
    token = form.link.token
    new_email = form.fields.get("new_email", "")

    def change(session: Session) -> HTMLResponse:
        subscriber = form.holder(session)
        try:
            outcome = request_email_change(
                session, subscriber, new_email, smtputf8=settings.smtp_utf8
            )
        except SubscriberError as exc:
            return view.render(
                session,
                subscriber,
                token,
                status_code=400,
                values={"new_email": new_email},
                errors={"new_email": str(exc)},
            )
        address = normalise_email(new_email)
        if limiter.allow(settings.confirm_limit_per_address, "notice", address):
            notices.publish(session, outcome)
        return view.render(
            session,
            subscriber,
            token,
            notice=f"We sent a confirmation link to {address}. "
            "Your digests move there once you follow it.",
        )

    return await transaction(change)


@router.post("/preferences/{token}/sign-out", response_class=HTMLResponse)
async def sign_out_post(
    form: PreferencesForm,
    pages: PagesDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    notices: NoticesDep,
    transaction: TransactionDep,
) -> HTMLResponse:
    def sign_out(session: Session) -> HTMLResponse:
        subscriber = form.holder(session)
        outcome = sign_out_links(subscriber)
        mailed = limiter.allow(settings.confirm_limit_per_address, "notice", subscriber.email)
        if mailed:
            notices.publish(session, outcome)
        # No new link here: whoever holds a forwarded one may be the one asking.
        return pages.message(
            "All your links are signed out",
            "The links in earlier emails, and this page's, no longer open your subscription. "
            + (
                "We emailed a new link to the address on file."
                if mailed
                else "We have sent that address several emails just now; in a few minutes, "
                "enter it on the front page for a new link."
            ),
            link=("/", "Front page"),
        )

    return await transaction(sign_out)


@router.get("/preferences/{token}/data.json")
async def download_data(link: PreferencesLink, transaction: TransactionDep) -> Response:
    def export(session: Session) -> dict[str, Any]:
        return personal_data(session, link.holder(session))

    data = await transaction(export)
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-digest-data.json"'},
    )


@router.get("/preferences/{token}/delete", response_class=HTMLResponse)
async def delete_page(
    link: PreferencesLink,
    pages: PagesDep,
    form_tokens: FormTokensDep,
    transaction: TransactionDep,
) -> HTMLResponse:
    def show(session: Session) -> HTMLResponse:
        subscriber = link.holder(session)
        return pages.page(
            "delete",
            email=subscriber.email,
            csrf=form_tokens.issue(subscriber),
            action=f"/preferences/{link.token}/delete",
            back=f"/preferences/{link.token}",
        )

    return await transaction(show)


@router.post("/preferences/{token}/delete", response_class=HTMLResponse)
async def delete_post(
    form: PreferencesForm, pages: PagesDep, transaction: TransactionDep
) -> HTMLResponse:
    def erase(session: Session) -> HTMLResponse:
        erase_subscriber(session, form.holder(session))
        return pages.message(
            "Your data is deleted",
            "Your address, preferences and the record of digests sent to you are gone. "
            "You will receive nothing more from us.",
        )

    return await transaction(erase)
