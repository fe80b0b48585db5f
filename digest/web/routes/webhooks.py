"""``/webhooks/ses`` and ``/webhooks/postmark``: providers' bounce and complaint
reports, each request's recorded in one unit of work.

Neither is a form: no Origin, no CSRF token (a provider posts from its servers, on
the strength of the SNS signature or the basic auth credentials alone), a JSON
body read up to ``MAX_BODY`` bytes. Each answers 404 until configured, as any
unknown address does.

What the status codes tell the provider: 200, taken (also when the event names no
reader of ours, or is a kind we ignore: retrying would not change that); 400 and
403, never retried by SNS and not worth retrying; 502 when a fetch from SNS failed,
so that SNS tries again later. A retried report is recorded once (``record_event``
knows it by source, message, kind and status).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from digest.bounces.events import MailEvent
from digest.bounces.matching import with_delivery
from digest.bounces.postmark import NotAPostmarkRecord, credentials_match, postmark_events
from digest.bounces.ses import NotAnSesNotification, ses_events
from digest.bounces.sns import (
    NOTIFICATION,
    SUBSCRIPTION_CONFIRMATION,
    FetchError,
    MalformedMessage,
    SnsMessage,
    SnsVerifier,
    UntrustedMessage,
    message_type_header,
    notification_json,
)
from digest.clock import utcnow
from digest.runtime import Runtime
from digest.web.dependencies import SettingsDep, Transaction, TransactionDep, collaborators_of

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks")

# SNS messages are at most 256 KB, escaped into JSON; a Postmark bounce record with
# its dump can carry the bounced message. Neither comes near this.
MAX_BODY = 1024 * 1024


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge()
    return bytes(body)


def refused(status: int, text: str) -> PlainTextResponse:
    return PlainTextResponse(text + "\n", status_code=status)


def recorded(transaction_result: list[Any]) -> JSONResponse:
    taken = sum(1 for r in transaction_result if r is not None)
    return JSONResponse({"recorded": taken, "unknown": len(transaction_result) - taken})


@router.post("/ses", include_in_schema=False)
async def ses_webhook(request: Request, transaction: TransactionDep) -> Response:
    runtime: Runtime = collaborators_of(request).runtime
    verifier = runtime.sns_verifier
    if verifier is None:
        raise HTTPException(404)
    try:
        body = await read_body(request)
    except BodyTooLarge:
        return refused(413, "too large")
    now = utcnow()
    try:
        # The certificate may have to be fetched: off the event loop.
        message = await run_in_threadpool(verifier.verify, body, now=now)
        message_type_header(request.headers.get("x-amz-sns-message-type"), message)
    except MalformedMessage as exc:
        log.warning("refused an SNS post: %s", exc)
        return refused(400, "not an SNS message")
    except UntrustedMessage as exc:
        log.warning("refused an SNS post: %s", exc)
        return refused(403, "not signed by SNS for our topic")
    except FetchError as exc:
        log.warning("could not check an SNS post: %s", exc)
        return refused(502, "could not fetch the signing certificate")
    if message.type == SUBSCRIPTION_CONFIRMATION:
        return await _confirm(verifier, message)
    if message.type != NOTIFICATION:
        # An UnsubscribeConfirmation: someone removed the subscription; nothing to do.
        log.info("SNS unsubscribed this endpoint from %s", message.topic_arn)
        return JSONResponse({"recorded": 0, "unknown": 0})
    try:
        notification = notification_json(message)
    except MalformedMessage:
        # Signed by SNS for our topic, but no SES event: SES's "Successfully
        # validated SNS topic…", a test message published by hand. Taken, ignored.
        log.info("ignored an SNS notification that is not JSON: %.200s", message.message)
        return recorded([])
    try:
        events = ses_events(notification, addresses=runtime.bounces, received_at=now)
    except NotAnSesNotification as exc:
        log.warning("an SNS notification that is no SES notification: %s", exc)
        return refused(400, "not an SES notification")
    return await _record(transaction, runtime, events)


async def _confirm(verifier: SnsVerifier, message: SnsMessage) -> Response:
    try:
        await run_in_threadpool(verifier.confirm, message)
    except UntrustedMessage as exc:
        log.warning("refused an SNS subscription: %s", exc)
        return refused(403, "not an SNS subscription URL")
    except FetchError as exc:
        log.warning("could not confirm the SNS subscription: %s", exc)
        return refused(502, "could not confirm the subscription")
    return JSONResponse({"confirmed": message.topic_arn})


@router.post("/postmark", include_in_schema=False)
async def postmark_webhook(
    request: Request, settings: SettingsDep, transaction: TransactionDep
) -> Response:
    if not settings.postmark_webhook_user:
        raise HTTPException(404)
    if not credentials_match(
        request.headers.get("authorization"),
        user=settings.postmark_webhook_user,
        password=settings.postmark_webhook_password,
    ):
        return Response(
            "wrong credentials\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": 'Basic realm="webhooks", charset="UTF-8"'},
        )
    try:
        body = await read_body(request)
    except BodyTooLarge:
        return refused(413, "too large")
    try:
        record = json.loads(body)
        if not isinstance(record, dict):
            raise NotAPostmarkRecord("not a JSON object")
        events = postmark_events(record, received_at=utcnow())
    except (ValueError, UnicodeDecodeError) as exc:
        log.warning("refused a Postmark post: %s", exc)
        return refused(400, "not a Postmark webhook record")
    runtime: Runtime = collaborators_of(request).runtime
    return await _record(transaction, runtime, events)


async def _record(transaction: Transaction, runtime: Runtime, events: list[MailEvent]) -> Response:
    if not events:
        return recorded([])

    def match(session: Session) -> list[MailEvent]:
        return [with_delivery(session, event) for event in events]

    matched = await transaction(match)
    # One unit of work for the lot, counted in digest_mail_events once committed.
    return recorded(await run_in_threadpool(runtime.record_mail_events, matched))
