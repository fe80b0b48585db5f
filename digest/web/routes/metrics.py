"""``/metrics``: Prometheus's text format. The figures read from the database and the
broker at scrape time (:mod:`digest.metrics.collector`) and this process's own
counters (notices it sends without a broker)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    # A sync route: the scrape's queries run in the thread pool, off the event loop.
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)
