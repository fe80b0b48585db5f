"""One settings class for every process: CLI, web app, Celery worker and beat.

Values come from the environment with the ``DIGEST_`` prefix (or a ``.env`` file).
Build a ``Settings`` and pass it to ``create_app`` / ``create_celery``; tests build
their own instead of patching a global.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_SECRET_KEY = "development-only-secret-change-me"
# The largest feed or listing a fetch reads before giving up on it.
DEFAULT_FETCH_MAX_BYTES = 50 * 1024 * 1024


def packaged_templates_dir() -> Path:
    """The templates beside the ``digest`` package that is imported: ``digest/templates/``
    in an installed wheel; ``templates/`` at the top level of a source checkout (which an
    editable install runs from)."""
    # A wheel is installed unpacked, so the package is a directory on disk.
    package = Path(str(resources.files("digest"))).resolve()
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIGEST_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data")
    # Empty means the embedded default: SQLite under ``data_dir``.
    database_url: str = ""
    # Empty means no broker: tasks run in-process through the same Celery code path.
    broker_url: str = ""
    smtp_url: str = "smtp://127.0.0.1:1025"
    smtp_timeout_seconds: float = 30.0
    # Per sending process: SMTP sessions open at once (one message in flight on
    # each) and messages per second (None: no limit). The SMTP URL's
    # ``?connections=N&rate=R`` win over these for that server.
    smtp_connections: int = Field(default=4, ge=1, le=100)
    smtp_rate: float | None = Field(default=None, gt=0)
    # Whether the SMTP server offers SMTPUTF8 (RFC 6531), which an address with a local
    # part beyond ASCII (jörg@…) needs. False: the subscribe form refuses such addresses.
    # A server that turns out not to offer it fails those deliveries alone, with the reason.
    smtp_utf8: bool = True
    secret_key: str = DEFAULT_SECRET_KEY
    base_url: str = "http://127.0.0.1:8000"
    from_address: str = "digest <digest@localhost>"
    site_name: str = "digest"
    # The Reply-To header of every email (empty: none, replies go to From).
    reply_to: str = ""
    # The sender id ending Gmail's Feedback-ID header (empty: the From domain).
    feedback_sender_id: str = ""
    templates_dir: Path = Field(default_factory=packaged_templates_dir)
    # DKIM: every email is signed when all three are set (see `digest dkim keygen`).
    # The domain should be the From address's domain, or a parent of it, for DMARC.
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_private_key_file: Path | None = None

    # Sources: the file that lists them (None: the packaged config/sources.toml) and,
    # when set, a comma-separated list of the names to run instead of the file's choice.
    sources_file: Path | None = None
    sources: str = ""
    fetch_timeout_seconds: float = 30.0
    fetch_max_bytes: int = Field(default=DEFAULT_FETCH_MAX_BYTES, ge=1024)

    # Ingestion and dispatch schedule (Celery beat); a source's every_minutes wins.
    ingest_interval_minutes: float = 60.0
    dispatch_interval_minutes: float = 5.0
    # Papers first seen within this window are candidates for a digest.
    candidate_window_days: int = 7
    # The ranking's parameters (None: the packaged config/ranking.toml).
    ranking_file: Path | None = None
    send_batch_size: int = Field(default=200, ge=1, le=5000)
    # Attempts at a subscription notice (a digest is retried until it is too late).
    send_max_attempts: int = Field(default=5, ge=1)
    # Bounce policy (digest.bounces.policy): this many soft bounces within this many
    # days bounce a reader; a hard bounce does at once.
    bounce_soft_limit: int = Field(default=3, ge=1)
    bounce_soft_window_days: int = Field(default=7, ge=1)

    # Delivery stages (see digest.delivery.models). A mail task holds the rows it
    # sends for this long, renewing as it goes; a dead worker's rows are claimed
    # again once it has passed.
    send_lease_seconds: float = Field(default=60.0, gt=0)
    # A mail task records outcomes every this many messages: a killed worker's
    # replacement sends at most these again (with their Message-IDs).
    mail_commit_every: int = Field(default=20, ge=1, le=20)
    # A transient SMTP failure is retried after 1, 2, 4 ... times the first delay,
    # at most the cap, for as long as the edition is not too old to be worth it.
    send_retry_first_seconds: float = Field(default=60.0, gt=0)
    send_retry_max_seconds: float = Field(default=300.0, gt=0)
    send_give_up_after_hours: float = Field(default=20.0, gt=0)
    send_give_up_after_hours_weekly: float = Field(default=96.0, gt=0)
    # The sweep republishes queued and ranked digests whose task has not run this
    # long after it was published, and sending ones whose lease has expired.
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    sweep_after_seconds: float = Field(default=60.0, gt=0)
    # Redis redelivers a task not acknowledged this long after a worker took it:
    # above the longest task and retry countdown, or a slow task runs twice.
    broker_visibility_timeout_seconds: int = Field(default=3600, ge=60)

    # Database connections per web process, and as many request threads: a pool
    # smaller than the threads makes the spike after a send open and close
    # PostgreSQL connections by the hundred.
    web_db_connections: int = Field(default=16, ge=1, le=200)
    # Where rate-limit counters live: empty is this process's memory (the embedded
    # default has one web process); production shares them in Redis.
    rate_limit_url: str = ""
    # The reverse proxies whose X-Forwarded-For (and -Proto) are believed, as
    # comma-separated addresses or networks ("127.0.0.1", "10.0.0.0/8"). Empty: none,
    # and the client address is the connection's; anyone else could claim any
    # address and walk past the per-IP limit.
    trusted_proxies: str = ""
    # Per client IP, for the subscribe form (``limits`` notation, "10/hour").
    subscribe_limit_per_ip: str = "10/hour"
    # Confirmation emails to one address: what stops the form bombing an inbox.
    confirm_limit_per_address: str = "1/2minutes;3/day"

    # `digest inbound`: the SMTP server the domain's MX points at, for bounces (DSNs),
    # abuse reports (ARF) and mailto unsubscribes. A larger message is refused (552).
    inbound_host: str = "127.0.0.1"
    inbound_port: int = Field(default=2525, ge=1, le=65535)
    inbound_max_bytes: int = Field(default=2 * 1024 * 1024, ge=64 * 1024)
    # Comma-separated addresses where feedback loops send abuse reports (besides
    # postmaster@ and the VERP addresses, which are always taken), e.g. "abuse@lab.example".
    inbound_report_addresses: str = ""
    # Provider webhooks for bounces and complaints (digest.web.routes.webhooks).
    # Amazon SES through SNS: the topic ARNs whose messages /webhooks/ses believes,
    # comma-separated; empty: the route answers 404.
    ses_topic_arn: str = ""
    # Postmark: the HTTP basic auth credentials its webhook is set up to send; both
    # empty: /webhooks/postmark answers 404.
    postmark_webhook_user: str = ""
    postmark_webhook_password: str = ""

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment != "development" and self.secret_key == DEFAULT_SECRET_KEY:
            raise ValueError(
                "DIGEST_SECRET_KEY must be set to a private random value outside development"
            )
        return self

    @model_validator(mode="after")
    def _proxies_are_addresses(self) -> Settings:
        for item in self.trusted_proxy_list:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"DIGEST_TRUSTED_PROXIES: {item!r} is not an address or network "
                    "(trusting every client's forwarded headers is what it must not do)"
                ) from None
        return self

    @model_validator(mode="after")
    def _dkim_all_or_nothing(self) -> Settings:
        given = {
            "DIGEST_DKIM_DOMAIN": bool(self.dkim_domain),
            "DIGEST_DKIM_SELECTOR": bool(self.dkim_selector),
            "DIGEST_DKIM_PRIVATE_KEY_FILE": self.dkim_private_key_file is not None,
        }
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(name for name, present in given.items() if not present)
            raise ValueError(f"DKIM signing needs all three settings; missing {missing}")
        return self

    @property
    def dkim_enabled(self) -> bool:
        return self.dkim_private_key_file is not None

    @property
    def inbound_report_address_list(self) -> list[str]:
        return [a.strip() for a in self.inbound_report_addresses.split(",") if a.strip()]

    @model_validator(mode="after")
    def _postmark_credentials_whole(self) -> Settings:
        if bool(self.postmark_webhook_user) != bool(self.postmark_webhook_password):
            raise ValueError(
                "DIGEST_POSTMARK_WEBHOOK_USER and DIGEST_POSTMARK_WEBHOOK_PASSWORD go together"
            )
        if self.postmark_webhook_password and len(self.postmark_webhook_password) < 16:
            # Anyone who guesses it can bounce or unsubscribe any reader.
            raise ValueError("DIGEST_POSTMARK_WEBHOOK_PASSWORD must be at least 16 characters")
        if ":" in self.postmark_webhook_user:
            raise ValueError("DIGEST_POSTMARK_WEBHOOK_USER cannot contain ':' (HTTP basic auth)")
        return self

    @property
    def ses_topic_arns(self) -> list[str]:
        return [item.strip() for item in self.ses_topic_arn.split(",") if item.strip()]

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]

    @model_validator(mode="after")
    def _consistent_delivery_timings(self) -> Settings:
        # A lease is renewed between messages: one SMTP exchange must fit in half of it.
        if self.smtp_timeout_seconds * 2 > self.send_lease_seconds:
            raise ValueError(
                "DIGEST_SEND_LEASE_SECONDS must be at least twice DIGEST_SMTP_TIMEOUT_SECONDS"
            )
        if self.broker_visibility_timeout_seconds <= max(
            self.send_retry_max_seconds, self.send_lease_seconds
        ):
            raise ValueError(
                "DIGEST_BROKER_VISIBILITY_TIMEOUT_SECONDS must exceed the longest retry "
                "countdown (DIGEST_SEND_RETRY_MAX_SECONDS) and the send lease"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'digest.db').resolve()}"

    @classmethod
    def from_values(cls, **values: Any) -> Settings:
        """Settings from these values and the defaults alone, whatever the
        environment or a ``.env`` file say (tests, embedding applications)."""
        return _ExplicitSettings(**values)


class _ExplicitSettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@lru_cache
def get_settings() -> Settings:
    """Settings read from the process environment (for entry points only)."""
    return Settings()
