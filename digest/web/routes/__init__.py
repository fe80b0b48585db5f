"""One router per page group, in the order the app includes them."""

from __future__ import annotations

from fastapi import APIRouter

from digest.web.routes import (
    archive,
    confirm,
    feedback,
    health,
    library,
    metrics,
    preferences,
    subscribe,
    unsubscribe,
    webhooks,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    subscribe.router,
    confirm.router,
    preferences.router,
    library.router,
    feedback.router,
    unsubscribe.router,
    webhooks.router,
    archive.router,
)
