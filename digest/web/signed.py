"""What a signed link or form proves, and the reader it was signed for.

A token's signature is checked as the request is parsed; the reader it names is
looked up in the request's unit of work, where an erased reader or revoked links
are found out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from digest.subscriptions.models import Subscriber
from digest.subscriptions.tokens import InvalidToken, Purpose, Signer, TokenClaims


class LinkGone(Exception):
    """A well-signed link for a subscriber who no longer exists (erased)."""


@dataclass(frozen=True)
class SignedLink:
    """The token of a link's path, its signature good for the link's purpose."""

    token: str
    claims: TokenClaims

    @property
    def nonce(self) -> int | None:
        return self.claims.nonce

    def holder(self, session: Session) -> Subscriber:
        """The subscriber the link was signed for, while its links are valid."""
        subscriber = session.get(Subscriber, self.claims.subscriber_id)
        if subscriber is None:
            raise LinkGone()
        if subscriber.token_version != self.claims.version:
            raise InvalidToken("this link is no longer valid")
        return subscriber


class FormTokens:
    """The CSRF token of a reader's forms: signed for that reader and their links'
    version, so a revoked link's page can post nothing either."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def issue(self, subscriber: Subscriber) -> str:
        return self.signer.sign(
            Purpose.FORM, subscriber_id=subscriber.id, version=subscriber.token_version
        )

    def check(self, subscriber: Subscriber, fields: dict[str, str]) -> None:
        try:
            claims = self.signer.verify(Purpose.FORM, fields.get("csrf", ""))
        except InvalidToken:
            raise InvalidToken("this form has expired or did not come from this site") from None
        if (claims.subscriber_id, claims.version) != (subscriber.id, subscriber.token_version):
            raise InvalidToken("this form did not come from your preferences page")


@dataclass(frozen=True)
class SignedForm:
    """A form posted to a signed link, with the CSRF token of the link's reader."""

    fields: dict[str, str]
    link: SignedLink
    tokens: FormTokens

    def holder(self, session: Session) -> Subscriber:
        """The link's subscriber, once the form proves it came from their page."""
        subscriber = self.link.holder(session)
        self.tokens.check(subscriber, self.fields)
        return subscriber
