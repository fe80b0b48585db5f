"""``/``: subscribe, with double opt-in. The answer is the same whether the address
is new, pending or subscribed; a honeypot field and rate limits per client IP and
per address keep the form from being used to bomb an inbox."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from digest.clock import utcnow
from digest.subscriptions.choices import Frequency
from digest.subscriptions.subscribers import (
    MAX_INTERESTS,
    InvalidEmail,
    normalise_email,
    request_subscription,
)
from digest.web.dependencies import (
    FormFields,
    LimiterDep,
    NoticesDep,
    PagesDep,
    SettingsDep,
    TransactionDep,
)
from digest.web.rendering import Pages

log = logging.getLogger(__name__)
router = APIRouter()


def subscribe_form(
    pages: Pages, status_code: int = 200, values: dict[str, str] | None = None, **errors: str
) -> HTMLResponse:
    return pages.page(
        "subscribe",
        status_code,
        values={"email": "", "interests": "", "frequency": "daily", **(values or {})},
        errors=errors,
    )


@router.get("/", response_class=HTMLResponse)
def subscribe_page(pages: PagesDep) -> HTMLResponse:
    return subscribe_form(pages)


@router.post("/", response_class=HTMLResponse)
async def subscribe_post(
    request: Request,
    fields: FormFields,
    pages: PagesDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    notices: NoticesDep,
    transaction: TransactionDep,
) -> HTMLResponse:
    values = {k: fields.get(k, "").strip() for k in ("email", "interests", "frequency")}
    if fields.get("website"):
        # Only a bot fills the field people cannot see: it learns nothing.
        return pages.page("check_inbox", email=values["email"])
    client = request.client.host if request.client else "unknown"
    if not limiter.allow(settings.subscribe_limit_per_ip, "subscribe-ip", client):
        return pages.message(
            "Too many attempts",
            "This network has asked for many subscriptions in a short time. "
            "Please try again in an hour.",
            status_code=429,
        )
    errors: dict[str, str] = {}
    try:
        address = normalise_email(values["email"], smtputf8=settings.smtp_utf8)
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
        return subscribe_form(pages, 400, values, **errors)

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
            notices.publish(session, outcome)
        else:
            log.warning("subscribe: notice limit reached for an address; not sent")

    await transaction(subscribe)
    return pages.page("check_inbox", email=address)
