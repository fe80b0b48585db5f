"""FastAPI application factory: the pages a subscriber reaches from the site and
from the links in every email.

``create_app`` is the one place the web collaborators are built; it keeps them on
``app.state``, where the dependencies of :mod:`digest.web.dependencies` hand them
to the routers of :mod:`digest.web.routes`, one per page group. Routes parse the
request and render; what they do is in :mod:`digest.subscriptions`. Database work
runs in the thread pool so one slow query never stalls the loop; on PostgreSQL the
one-click POSTs, which arrive by the thousand after a send, are answered on the
loop before routing (:mod:`digest.web.one_click`).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from anyio import to_thread
from celery import Celery
from fastapi import FastAPI
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from prometheus_client import REGISTRY, CollectorRegistry
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from config.settings import Settings, get_settings
from digest.mail.mailbox import Mailbox
from digest.metrics.collector import StatusCollector
from digest.runtime import Runtime
from digest.subscriptions.ratelimit import RateLimiter
from digest.web.access_log import redact_access_log
from digest.web.dependencies import Collaborators
from digest.web.errors import add_error_pages
from digest.web.one_click import OneClickShortcut, OneClickUnsubscriber
from digest.web.rendering import Pages
from digest.web.routes import ROUTERS
from digest.web.security_headers import SECURITY_HEADERS, SecurityHeaders

if TYPE_CHECKING:
    from digest.bounces.sns import Fetch
    from digest.papers.sources.http import Fetcher

    # A type only: create_app imports workers.app when it builds the celery app itself.
    from workers.app import DigestCelery

__all__ = ["SECURITY_HEADERS", "app_from_environment", "create_app"]


def app_from_environment() -> FastAPI:
    """The app as ``digest web`` serves it, from ``DIGEST_*`` (uvicorn's factory)."""
    app = create_app(get_settings())
    redact_access_log()
    # What the imports and the app built lives as long as the process: frozen, the
    # cyclic collector's full passes no longer walk it. Under the one-click spike
    # they came every second or two and took ~100 ms each: the whole p99.
    gc.collect()
    gc.freeze()
    return app


def metrics_registry(runtime: Runtime) -> CollectorRegistry:
    """What ``/metrics`` serves: the state read at scrape time, then this process's
    counters (the default registry, where :mod:`digest.metrics.instruments` counts)."""
    from workers.app import QUEUES

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(lambda: runtime.status(QUEUES)))
    registry.register(REGISTRY)
    return registry


def create_app(
    settings: Settings,
    celery: Celery | None = None,
    *,
    provider_fetch: Fetch | None = None,
    mailbox: Mailbox | None = None,
    paper_fetcher: Callable[[], Fetcher] | None = None,
) -> FastAPI:
    """``provider_fetch`` GETs providers' URLs for the webhooks (SNS certificates),
    ``paper_fetcher`` builds what fetches a reader's papers from arXiv: tests pass
    them, the defaults are HTTPS. With ``mailbox`` (``digest serve`` only) the site
    also shows, under ``/mailbox``, what the local SMTP sink received; without, there
    is no such page."""
    sqlite = settings.resolved_database_url.startswith("sqlite")
    runtime = Runtime(
        settings,
        provider_fetch=provider_fetch,
        paper_fetcher=paper_fetcher,
        **(
            {}
            if sqlite
            else {
                "pool_size": settings.web_db_connections,
                "max_overflow": 0,
                # A pre-ping is a second round trip and transaction per request; a
                # dropped connection is instead found by the request that meets it
                # and the pool discarded then.
                "pool_pre_ping": False,
                "pool_recycle": 1800,
            }
        ),
    )
    signer = runtime.signer
    links = runtime.links
    limiter = RateLimiter(settings.rate_limit_url)
    built_celery: DigestCelery | None = None
    if celery is None:
        from workers.app import create_celery

        celery = built_celery = create_celery(settings)
    templates = Environment(
        loader=FileSystemLoader(str(settings.templates_dir)),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
    )

    # The one-click POSTs after a send, on the event loop (see digest.web.one_click).
    one_click = (
        None
        if sqlite
        else OneClickUnsubscriber(runtime.engine, connections=settings.web_db_connections)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Request threads, each with a connection when it needs one.
        to_thread.current_default_thread_limiter().total_tokens = settings.web_db_connections
        if one_click is not None:
            await one_click.open()
        try:
            yield
        finally:
            if one_click is not None:
                await one_click.close()
            runtime.dispose()
            # Notices run in this process without a broker, on the celery app's connections.
            if built_celery is not None:
                built_celery.dispose()

    app = FastAPI(
        title=settings.site_name,
        summary="Trending research papers in your inbox: subscription pages and API.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    if one_click is not None:
        app.add_middleware(OneClickShortcut, unsubscriber=one_click, signer=signer)
    # Added after the shortcut, so outside it: its headers go on the shortcut's answers too.
    app.add_middleware(SecurityHeaders, https=settings.base_url.startswith("https://"))
    if settings.trusted_proxy_list:
        # Outermost: the routes (the per-IP limit) see the reader's address, and only
        # when a configured proxy says so; uvicorn's own handling is off (digest web).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    app.state.collaborators = Collaborators(
        settings=settings,
        runtime=runtime,
        signer=signer,
        links=links,
        limiter=limiter,
        pages=Pages(templates, site_name=settings.site_name),
        celery=celery,
    )
    app.state.runtime = runtime
    app.state.metrics_registry = metrics_registry(runtime)
    app.state.one_click = one_click
    add_error_pages(app)
    for router in ROUTERS:
        app.include_router(router)
    if mailbox is not None:
        from digest.web.routes import mailbox as mailbox_routes

        app.state.mailbox = mailbox
        app.include_router(mailbox_routes.router)
    return app
