"""Who the mail and the links say they come from: the site's name, address and URL."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A phrase RFC 5322 takes without quotes: atoms separated by single spaces.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@dataclass(frozen=True)
class SiteIdentity:
    name: str
    # Where the subscriber pages are served; every link in an email starts here.
    base_url: str
    # The From header: "digest <digest@lab.example>".
    from_address: str
    # The Reply-To header, when replies should go elsewhere than From; None: no header.
    reply_to: str | None = None
    # The last field of Feedback-ID (Gmail's feedback loop groups complaints by it);
    # empty: the From domain.
    feedback_sender_id: str = ""

    @property
    def from_domain(self) -> str:
        address = self.from_address.rsplit("<", 1)[-1].rstrip(">").strip()
        return address.rsplit("@", 1)[-1] or "localhost"

    @property
    def ascii_domain(self) -> str:
        domain = self.from_domain
        return domain if domain.isascii() else domain.encode("idna").decode("ascii")

    @property
    def unsubscribe_mailto(self) -> str:
        return f"unsubscribe@{self.from_domain}"

    @property
    def digest_list_id(self) -> str:
        """RFC 2919: the site's name as the description, ``<digest.DOMAIN>`` as the id."""
        name = self.name.strip()
        if not _ATOMS.fullmatch(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <digest.{self.ascii_domain}>"

    def feedback_id(self, campaign: str, kind: str) -> str:
        """Gmail's ``Feedback-ID: a:b:c:SenderId``, here ``campaign:kind:digest:sender``
        (an edition and "digest", or "notice" and the notice's name)."""
        sender = self.feedback_sender_id or self.ascii_domain
        return ":".join(part.replace(":", "-") for part in (campaign, kind, "digest", sender))
