"""The signed links a subscriber gets: unsubscribe, preferences, confirmations.

Every email and the support CLI build them here, so a link kind has one shape. The
``*_with(token)`` forms build a link around a token already signed (a digest signs each
token once and places it in several links).
"""

from __future__ import annotations

from digest.mail.identity import SiteIdentity
from digest.mail.message import ListUnsubscribe
from digest.subscriptions.models import Subscriber
from digest.subscriptions.tokens import Purpose, Signer


class Links:
    def __init__(self, signer: Signer, site: SiteIdentity) -> None:
        self.signer = signer
        self.base = site.base_url.rstrip("/")
        self.unsubscribe_mailto = site.unsubscribe_mailto

    def token(self, purpose: Purpose, subscriber: Subscriber) -> str:
        single_use = purpose in (Purpose.CONFIRM, Purpose.CHANGE_EMAIL)
        return self.signer.sign(
            purpose,
            subscriber_id=subscriber.id,
            version=subscriber.token_version,
            nonce=subscriber.confirm_nonce if single_use else None,
        )

    def unsubscribe(self, subscriber: Subscriber) -> ListUnsubscribe:
        return self.unsubscribe_with(self.token(Purpose.UNSUBSCRIBE, subscriber))

    def unsubscribe_with(self, token: str) -> ListUnsubscribe:
        return ListUnsubscribe(
            https_url=f"{self.base}/unsubscribe/{token}",
            mailto=f"mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{token}",
        )

    def preferences(self, subscriber: Subscriber) -> str:
        return self.preferences_with(self.token(Purpose.PREFERENCES, subscriber))

    def preferences_with(self, token: str) -> str:
        return f"{self.base}/preferences/{token}"

    def feedback(self, subscriber: Subscriber, paper_id: int, kind: str) -> str:
        """The "more like this" (kind "more") or "fewer like this" (kind "fewer") page."""
        return self.feedback_with(self.feedback_token(subscriber, paper_id), kind)

    def feedback_token(self, subscriber: Subscriber, paper_id: int) -> str:
        """One token for both feedback pages of a paper: the kind is not signed."""
        return self.signer.sign(
            Purpose.FEEDBACK,
            subscriber_id=subscriber.id,
            version=subscriber.token_version,
            nonce=paper_id,
        )

    def view(self, subscriber: Subscriber, delivery_id: int) -> str:
        """One digest of this reader's as a web page ("View in browser")."""
        return self.view_with(self.view_token(subscriber, delivery_id))

    def view_token(self, subscriber: Subscriber, delivery_id: int) -> str:
        return self.signer.sign(
            Purpose.VIEW,
            subscriber_id=subscriber.id,
            version=subscriber.token_version,
            nonce=delivery_id,
        )

    def view_with(self, token: str) -> str:
        return f"{self.base}/digests/{token}"

    def feed(self, subscriber: Subscriber) -> str:
        """The reader's private Atom feed of their digests."""
        return f"{self.base}/feeds/{self.token(Purpose.FEED, subscriber)}"

    def feedback_with(self, token: str, kind: str) -> str:
        return f"{self.base}/feedback/{token}?kind={kind}"

    def confirm(self, subscriber: Subscriber) -> str:
        return f"{self.base}/confirm/{self.token(Purpose.CONFIRM, subscriber)}"

    def confirm_email_change(self, subscriber: Subscriber) -> str:
        return f"{self.base}/confirm-email/{self.token(Purpose.CHANGE_EMAIL, subscriber)}"
