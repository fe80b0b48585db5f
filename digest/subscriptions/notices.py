"""Emails about a subscription itself: confirm it, you are already subscribed,
confirm a new address, a fresh link once every old one is signed out. Sent one
at a time, after the request that asked for them has committed; the
subscriber's state is checked again at send time, so a notice that no longer
applies (confirmed meanwhile, erased) is not sent."""

from __future__ import annotations

import logging
from datetime import datetime

from jinja2 import Environment
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.mail.bounces import BounceAddresses
from digest.mail.identity import SiteIdentity
from digest.mail.message import build_message
from digest.mail.outgoing import OutgoingMessage, outgoing
from digest.mail.rendering import render_email
from digest.subscriptions.choices import Frequency, SubscriberStatus
from digest.subscriptions.links import Links
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import Notice

log = logging.getLogger(__name__)

# How long confirmation links work (digest.subscriptions.tokens.MAX_AGE_SECONDS), said in the email.
CONFIRM_HOURS = 48


class NoticeComposer:
    def __init__(
        self,
        environment: Environment,
        links: Links,
        site: SiteIdentity,
        bounces: BounceAddresses,
    ) -> None:
        self.environment = environment
        self.links = links
        self.site = site
        self.bounces = bounces

    def compose(
        self, session: Session, notice: Notice, subscriber_id: int, *, now: datetime
    ) -> OutgoingMessage | None:
        """The message to send, or None when the notice no longer applies."""
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        to = subscriber.email
        context: dict[str, object] = {
            "site_name": self.site.name,
            "email": subscriber.email,
            "hours": CONFIRM_HOURS,
            "frequency_label": "weekly" if subscriber.frequency == Frequency.WEEKLY else "daily",
        }
        template = notice.value
        if notice == Notice.CONFIRM:
            if subscriber.status != SubscriberStatus.PENDING:
                return None
            context["confirm_url"] = self.links.confirm(subscriber)
        elif notice == Notice.ALREADY_SUBSCRIBED:
            if subscriber.status not in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
                return None
            context["preferences_url"] = self.links.preferences(subscriber)
            context["paused"] = subscriber.status == SubscriberStatus.PAUSED
        elif notice == Notice.NEW_LINKS:
            if subscriber.status == SubscriberStatus.BOUNCED:
                # The address refused our mail for good; only subscribing again
                # (a fresh confirmation) mails it once more.
                return None
            context["preferences_url"] = self.links.preferences(subscriber)
        elif notice == Notice.CONFIRM_EMAIL_CHANGE:
            if subscriber.pending_email is None:
                return None
            to = subscriber.pending_email
            context["new_email"] = subscriber.pending_email
            owner = session.scalar(
                select(Subscriber).where(Subscriber.email == subscriber.pending_email)
            )
            if owner is not None:
                # An address on file: its owner is told someone asked, with their own
                # preferences link (as the subscribe form does), and whoever asked
                # was told the same as for a free address. One email either way, so
                # the time it took tells nothing either (see request_email_change).
                template = "address_in_use"
                context["preferences_url"] = self.links.preferences(owner)
            else:
                context["confirm_url"] = self.links.confirm_email_change(subscriber)
        rendered = render_email(self.environment, template, context)
        message = build_message(
            rendered,
            to=to,
            from_address=self.site.from_address,
            message_domain=self.site.ascii_domain,
            date=now,
            reply_to=self.site.reply_to,
            feedback_id=self.site.feedback_id("notice", notice.value),
        )
        return outgoing(message, sender=self.bounces.for_notice(subscriber.id))
