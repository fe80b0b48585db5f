"""The signed links a subscriber gets: unsubscribe, preferences, confirmations.

Every email and the support CLI build them here, so a link kind has one shape.
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
        token = self.token(Purpose.UNSUBSCRIBE, subscriber)
        return ListUnsubscribe(
            https_url=f"{self.base}/unsubscribe/{token}",
            mailto=f"mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{token}",
        )

    def preferences(self, subscriber: Subscriber) -> str:
        return f"{self.base}/preferences/{self.token(Purpose.PREFERENCES, subscriber)}"

    def feedback(self, subscriber: Subscriber, paper_id: int, kind: str) -> str:
        """The "more like this" (kind "more") or "fewer like this" (kind "fewer") page."""
        token = self.signer.sign(
            Purpose.FEEDBACK,
            subscriber_id=subscriber.id,
            version=subscriber.token_version,
            nonce=paper_id,
        )
        return f"{self.base}/feedback/{token}?kind={kind}"

    def confirm(self, subscriber: Subscriber) -> str:
        return f"{self.base}/confirm/{self.token(Purpose.CONFIRM, subscriber)}"

    def confirm_email_change(self, subscriber: Subscriber) -> str:
        return f"{self.base}/confirm-email/{self.token(Purpose.CHANGE_EMAIL, subscriber)}"
