"""Who the mail and the links say they come from: the site's name, address and URL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteIdentity:
    name: str
    # Where the subscriber pages are served; every link in an email starts here.
    base_url: str
    # The From header: "digest <digest@lab.example>".
    from_address: str

    @property
    def from_domain(self) -> str:
        address = self.from_address.rsplit("<", 1)[-1].rstrip(">").strip()
        return address.rsplit("@", 1)[-1] or "localhost"

    @property
    def unsubscribe_mailto(self) -> str:
        return f"unsubscribe@{self.from_domain}"

    @property
    def digest_list_id(self) -> str:
        return f"{self.name} digest <digest.{self.from_domain}>"
